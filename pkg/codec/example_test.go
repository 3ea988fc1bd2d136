package codec_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/hookstream/hookstream/pkg/codec"
)

func ExampleCatalog_EncodeJSON() {
	c, err := codec.Default()
	if err != nil {
		log.Fatal(err)
	}
	data, err := c.EncodeJSON("order.paid", []byte(`{
		"order_id": "ord_1", "payment_id": "pay_1",
		"amount": 4747, "currency": "USD", "method": "card",
		"paid_at": "2026-11-23T18:21:07Z"
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x ...\n", data[:2]) // Single Object Encoding marker

	_, err = c.EncodeJSON("order.paid", []byte(`{
		"order_id": "ord_1", "payment_id": "pay_1",
		"amount": "47.47", "currency": "USD", "method": "card",
		"paid_at": "2026-11-23T18:21:07Z"
	}`))
	var ve *codec.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve)
	}
	// Output:
	// c3 01 ...
	// data.amount: want long, got string "47.47"
}

func ExampleCatalog_DataToJSON() {
	c, err := codec.Default()
	if err != nil {
		log.Fatal(err)
	}
	data, err := c.EncodeJSON("organization.member_removed", []byte(`{
		"organization_id": "org_1", "user_id": "usr_2",
		"removed_at": 1795000000000
	}`))
	if err != nil {
		log.Fatal(err)
	}
	typ, js, err := c.DataToJSON(data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ)
	fmt.Println(string(js))
	// Output:
	// organization.member_removed
	// {"organization_id":"org_1","user_id":"usr_2","removed_by":null,"reason":"removed","removed_at":"2026-11-18T11:06:40.000Z"}
}

func ExampleCatalog_AppendDataJSON() {
	c, err := codec.Default()
	if err != nil {
		log.Fatal(err)
	}
	data, err := c.EncodeJSON("user.email_verified", []byte(`{"user_id": "usr_1", "email": "a@example.com", "verified_at": 0}`))
	if err != nil {
		log.Fatal(err)
	}
	// A deliverer reuses one buffer for every request body.
	var body []byte
	body = append(body[:0], `{"type":"user.email_verified","data":`...)
	body, err = c.AppendDataJSON(body, data)
	if err != nil {
		log.Fatal(err)
	}
	body = append(body, '}')
	fmt.Println(string(body))
	// Output:
	// {"type":"user.email_verified","data":{"user_id":"usr_1","email":"a@example.com","method":"link","verified_at":"1970-01-01T00:00:00.000Z"}}
}
