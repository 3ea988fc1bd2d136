package codec

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestExamplesRoundTrip(t *testing.T) {
	c := defaultCatalog(t)
	for _, typ := range c.Types() {
		t.Run(typ, func(t *testing.T) {
			ex := example(t, typ)
			soe, err := c.EncodeJSON(typ, ex)
			if err != nil {
				t.Fatal(err)
			}
			gotType, js, err := c.DataToJSON(soe)
			if err != nil {
				t.Fatal(err)
			}
			if gotType != typ {
				t.Errorf("type %q", gotType)
			}
			if !json.Valid(js) {
				t.Fatalf("invalid JSON %s", js)
			}
			jsonEqual(t, js, ex)
			// The output is canonical: encoding it again gives the same bytes.
			again, err := c.EncodeJSON(typ, js)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(soe) {
				t.Errorf("re-encoding the output changed the bytes")
			}
			// AppendDataJSON appends.
			out, err := c.AppendDataJSON([]byte("prefix:"), soe)
			if err != nil || string(out) != "prefix:"+string(js) {
				t.Errorf("AppendDataJSON = %s, %v", out, err)
			}
			// The examples use every field, so that receivers see them all.
			es, _ := c.Latest(typ)
			if got := semantic(t, ex).(map[string]any); len(got) != len(es.node.fields) {
				t.Errorf("example.json has %d fields, schema %d", len(got), len(es.node.fields))
			}
		})
	}
}

func TestEncodeJSONErrors(t *testing.T) {
	c := defaultCatalog(t)
	valid := semantic(t, example(t, "payment.succeeded")).(map[string]any)
	with := func(field string, raw string) []byte {
		m := map[string]json.RawMessage{}
		for k, v := range valid {
			b, _ := json.Marshal(v)
			m[k] = b
		}
		if raw == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(raw)
		}
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		typ  string
		data []byte
		path string // "" for errors that are not ValidationErrors
		want string
	}{
		{"payment.succeeded", with("amount", `"x"`), "data.amount", `want long, got string "x"`},
		{"payment.succeeded", with("amount", `1.5`), "data.amount", `want long (an integer), got number 1.5`},
		{"payment.succeeded", with("amount", `1e3`), "data.amount", `got number 1e3`},
		{"payment.succeeded", with("amount", `99999999999999999999`), "data.amount", `out of range for long`},
		{"payment.succeeded", with("amount", `null`), "data.amount", `want long, got null`},
		{"payment.succeeded", with("bogus", `1`), "data.bogus", `unknown field`},
		{"payment.succeeded", with("payment_id", ""), "data.payment_id", `missing required field`},
		{"payment.succeeded", with("method", `"cash"`), "data.method", `want one of card, bank_transfer, wallet, other, got string "cash"`},
		{"payment.succeeded", with("captured_at", `"yesterday"`), "data.captured_at", `want timestamp-millis as RFC 3339 string or integer, got string "yesterday"`},
		{"payment.succeeded", with("captured_at", `"2026-11-23 18:21:07"`), "data.captured_at", `RFC 3339`},
		{"payment.succeeded", with("captured_at", `253402300800000`), "data.captured_at", `timestamp-millis 253402300800000 out of range (years 0000 to 9999)`},
		{"payment.succeeded", with("captured_at", `"0000-01-01T00:30:00+01:00"`), "data.captured_at", `out of range`},
		{"payment.succeeded", with("captured_at", `true`), "data.captured_at", `want timestamp-millis, got boolean true`},
		{"payment.succeeded", with("card", `{"brand":"v","last4":"1","exp_month":3000000000,"exp_year":1}`), "data.card.exp_month", `number 3000000000 out of range for int`},
		{"payment.succeeded", with("card", `{"brand":"v","last4":"1","exp_month":1}`), "data.card.exp_year", `missing required field`},
		{"payment.succeeded", with("card", `"visa"`), "data.card", `want object (hookstream.events.payment.CardDetails), got string "visa"`},
		{"payment.succeeded", with("metadata", `{"ok":"1","bad":2}`), `data.metadata["bad"]`, `want string, got number 2`},
		{"payment.succeeded", with("metadata", `[]`), "data.metadata", `want object (map), got array`},
		{"payment.succeeded", with("order_id", `7`), "data.order_id", `want string, got number 7`},
		{"payment.succeeded", with("payment_id", `"`+strings.Repeat("x", 100)+`"`), "", ``}, // long strings are fine
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"0.12345"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `more than 4 decimal places`},
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"123.4"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `more than 6 digits`},
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"1/3"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `not a decimal number`},
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"1e999999999"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `not a decimal number`},
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"1e9999"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `more than 6 digits`},
		{"order.created", []byte(`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"1e-999"}],"subtotal":1,"tax":0,"total":1,"currency":"USD"}`),
			"data.items[0].tax_rate", `more than 4 decimal places`},
		{"order.shipped", []byte(`{"order_id":"o","shipment_id":"s","carrier":"ups","tracking_number":"t","items":[],"estimated_delivery":"27/11/2026","shipped_at":0}`),
			"data.estimated_delivery", `want date as "YYYY-MM-DD" or integer days`},
		{"user.password_reset", []byte(`{"user_id":"u","request_id":"3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6","requested_at":0,"expires_at":0}`),
			"data.request_id", `want uuid`},
		{"resource.created", []byte(`{"resource_id":"r","resource_type":"t","name":"n","checksum":"AAAA","created_at":0}`),
			"data.checksum", `want 32 bytes for fixed hookstream.events.resource.Sha256, got 3`},
		{"resource.created", []byte(`{"resource_id":"r","resource_type":"t","name":"n","checksum":"not base64!","created_at":0}`),
			"data.checksum", `as base64 string`},
		{"resource.created", []byte(`{"resource_id":"r","resource_type":"t","name":"n","tags":["a",1],"created_at":0}`),
			"data.tags[1]", `want string, got number 1`},
		{"resource.updated", []byte(`{"resource_id":"r","resource_type":"t","name":"n","revision":1,"changes":[{"field":"f","old_value":{"int":1}}],"updated_at":0}`),
			"data.changes[0].old_value", `union has no branch "int" (branches: [null string long double boolean])`},
		{"resource.updated", []byte(`{"resource_id":"r","resource_type":"t","name":"n","revision":1,"changes":[{"field":"f","old_value":"bare"}],"updated_at":0}`),
			"data.changes[0].old_value", `want null or {"<type>": value}`},
		{"resource.updated", []byte(`{"resource_id":"r","resource_type":"t","name":"n","revision":1,"changes":[{"field":"f","old_value":{"string":"a","long":1}}],"updated_at":0}`),
			"data.changes[0].old_value", `want null or {"<type>": value}`},
		{"resource.updated", []byte(`{"resource_id":"r","resource_type":"t","name":"n","revision":1,"changes":[{"field":"f","new_value":{"long":"1"}}],"updated_at":0}`),
			"data.changes[0].new_value", `want long, got string "1"`},
		{"order.delivered", []byte(`{"order_id":"o","shipment_id":"s","location":{"lat":"north","lon":1},"delivered_at":0}`),
			"data.location.lat", `want double, got string "north"`},
		{"order.delivered", []byte(`{"order_id":"o","shipment_id":"s","location":{"lat":1e999,"lon":1},"delivered_at":0}`),
			"data.location.lat", `out of range for double`},
		{"payment.succeeded", []byte(`[]`), "data", `want object (hookstream.events.payment.PaymentSucceeded), got array`},
		{"payment.succeeded", []byte(`{"a":`), "", `invalid JSON`},
		{"payment.succeeded", []byte(`{} {}`), "", `data after the top-level value`},
		{"payment.succeeded", []byte(``), "", `invalid JSON`},
	}
	for _, tc := range cases {
		_, err := c.EncodeJSON(tc.typ, tc.data)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.typ, tc.data, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s %s: no error, want %q", tc.typ, tc.data, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.typ, err, tc.want)
		}
		var ve *ValidationError
		if errors.As(err, &ve) != (tc.path != "") {
			t.Errorf("%s: error %q: ValidationError %v, want path %q", tc.typ, err, ve, tc.path)
			continue
		}
		if ve != nil {
			if ve.Path != tc.path {
				t.Errorf("%s: path %q, want %q (%v)", tc.typ, ve.Path, tc.path, err)
			}
			if !strings.Contains(err.Error(), tc.path+": ") {
				t.Errorf("%s: message %q does not start the problem with the path", tc.typ, err)
			}
		}
	}
	if _, err := c.EncodeJSON("no.such_type", []byte(`{}`)); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestEncodeJSONDefaultsAndInputForms(t *testing.T) {
	c := defaultCatalog(t)
	for _, tc := range []struct {
		typ, in, want string
	}{
		// Missing fields take their defaults; timestamps as epoch millis.
		{"payment.succeeded",
			`{"payment_id":"p","customer_id":"c","amount":1,"currency":"USD","method":"card","captured_at":1795000000123}`,
			`{"payment_id":"p","order_id":null,"customer_id":"c","amount":1,"currency":"USD","method":"card","card":null,"metadata":{},"captured_at":"2026-11-18T11:06:40.123Z","fee_amount":0,"receipt_url":null}`},
		// RFC 3339 with an offset and sub-millisecond digits: UTC, truncated.
		{"user.email_verified",
			`{"user_id":"u","email":"e","verified_at":"2026-11-23T20:21:07.123999+02:00"}`,
			`{"user_id":"u","email":"e","method":"link","verified_at":"2026-11-23T18:21:07.123Z"}`},
		// Dates as integer days; decimals as JSON numbers; record defaults.
		{"order.shipped",
			`{"order_id":"o","shipment_id":"s","carrier":"usps","tracking_number":"t","items":[{"sku":"a","quantity":-2147483648}],"estimated_delivery":20000,"shipped_at":-1}`,
			`{"order_id":"o","shipment_id":"s","carrier":"usps","tracking_number":"t","tracking_url":null,"items":[{"sku":"a","quantity":-2147483648}],"estimated_delivery":"2024-10-04","shipped_at":"1969-12-31T23:59:59.999Z"}`},
		{"order.created",
			`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":0.07},{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"-99.9999"}],"subtotal":1,"tax":0,"total":1,"currency":"USD","created_at":0}`,
			`{"order_id":"o","customer_id":"c","items":[{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"0.0700"},{"sku":"s","name":"n","quantity":1,"unit_price":1,"tax_rate":"-99.9999"}],"subtotal":1,"tax":0,"shipping":0,"total":1,"currency":"USD","shipping_address":null,"notes":null,"metadata":{},"created_at":"1970-01-01T00:00:00.000Z"}`},
		// NaN and infinities as strings; floats printed like encoding/json.
		{"order.delivered",
			`{"order_id":"o","shipment_id":"s","location":{"lat":"NaN","lon":"-Infinity"},"delivered_at":0}`,
			`{"order_id":"o","shipment_id":"s","signed_by":null,"proof_of_delivery_url":null,"location":{"lat":"NaN","lon":"-Infinity"},"delivered_at":"1970-01-01T00:00:00.000Z"}`},
		{"order.delivered",
			`{"order_id":"o","shipment_id":"s","location":{"lat":1e-7,"lon":1e21},"delivered_at":0}`,
			`{"order_id":"o","shipment_id":"s","signed_by":null,"proof_of_delivery_url":null,"location":{"lat":1e-7,"lon":1e+21},"delivered_at":"1970-01-01T00:00:00.000Z"}`},
		// Map keys come out sorted whatever the input order.
		{"organization.created",
			`{"organization_id":"o","name":"n","slug":"s","owner_user_id":"u","settings":{"z":"1","a":"2","m":"3"},"created_at":0}`,
			`{"organization_id":"o","name":"n","slug":"s","plan":"free","owner_user_id":"u","billing_email":null,"settings":{"a":"2","m":"3","z":"1"},"created_at":"1970-01-01T00:00:00.000Z"}`},
	} {
		soe, err := c.EncodeJSON(tc.typ, []byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.typ, err)
			continue
		}
		_, js, err := c.DataToJSON(soe)
		if err != nil {
			t.Errorf("%s: %v", tc.typ, err)
			continue
		}
		if string(js) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.typ, js, tc.want)
		}
	}
}

// TestGeneralUnionBranchNames: named branches are written with their full
// name and accepted by short name too.
func TestGeneralUnionBranchNames(t *testing.T) {
	u := mustNode(t, `{"type":"record","name":"R","namespace":"x","fields":[{"name":"v","type":[
		"null","string",{"type":"record","name":"P","fields":[{"name":"a","type":"int"}]},
		{"type":"array","items":"int"},{"type":"map","values":"int"},{"type":"fixed","name":"F","size":1}]}]}`)
	p, err := compileProg(u.node, u.node)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`{"v":null}`:                 `{"v":null}`,
		`{"v":{"string":"s"}}`:       `{"v":{"string":"s"}}`,
		`{"v":{"x.P":{"a":1}}}`:      `{"v":{"x.P":{"a":1}}}`,
		`{"v":{"P":{"a":1}}}`:        `{"v":{"x.P":{"a":1}}}`,
		`{"v":{"array":[1,2]}}`:      `{"v":{"array":[1,2]}}`,
		`{"v":{"map":{"b":1}}}`:      `{"v":{"map":{"b":1}}}`,
		`{"v":{"F":"/w=="}}`:         `{"v":{"x.F":"/w=="}}`,
		`{"v":{"null":null}}`:        ``,
		`{"v":{"y.P":{"a":1}}}`:      ``,
		`{"v":{"string":"s","P":1}}`: ``,
	} {
		body, err := encodeJSONValue(nil, u.node, decodeUseNumber(t, []byte(in)), 0)
		if want == "" {
			if err == nil {
				t.Errorf("%s accepted", in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		js, err := p.render(body)
		if err != nil || string(js) != want {
			t.Errorf("%s -> %s, %v; want %s", in, js, err, want)
		}
	}
}

func TestJSONStringEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain":              `"plain"`,
		"q\"b\\s/":           `"q\"b\\s/"`,
		"\n\r\t\b\f\x00\x1f": `"\n\r\t\u0008\u000c\u0000\u001f"`,
		"<&>":                `"<&>"`,
		"é☃😀":                `"é☃😀"`,
		"\u2028\u2029":       `"\u2028\u2029"`,
		"bad\xffutf8\xc3":    `"bad\ufffdutf8\ufffd"`,
		"\x7f":               "\"\x7f\"",
		"":                   `""`,
	} {
		got := appendJSONString(nil, []byte(in))
		if string(got) != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON %s", got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || (utf8.ValidString(in) && back != in) {
			t.Errorf("%q does not round-trip: %q, %v", in, back, err)
		}
	}
}

func TestJSONFloatFormat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		bits int
		want string
	}{
		{0, 64, "0"}, {math.Copysign(0, -1), 64, "-0"}, {1.5, 64, "1.5"}, {100, 64, "100"},
		{1e20, 64, "100000000000000000000"}, {1e21, 64, "1e+21"}, {1e-6, 64, "0.000001"}, {1e-7, 64, "1e-7"},
		{float64(float32(0.1)), 32, "0.1"}, {float64(float32(0.1)), 64, "0.10000000149011612"},
		{math.MaxFloat64, 64, "1.7976931348623157e+308"}, {math.SmallestNonzeroFloat64, 64, "5e-324"},
		{math.NaN(), 64, `"NaN"`}, {math.Inf(1), 32, `"Infinity"`}, {math.Inf(-1), 64, `"-Infinity"`},
	} {
		if got := string(appendJSONFloat(nil, tc.f, tc.bits)); got != tc.want {
			t.Errorf("appendJSONFloat(%v, %d) = %s, want %s", tc.f, tc.bits, got, tc.want)
		}
	}
}

func TestDecimalCodec(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		size  int
		hex   string
		out   string
	}{
		{"0", 2, 0, "00", "0.00"},
		{"1.5", 2, 0, "0096", "1.50"},
		{"-1.5", 2, 0, "ff6a", "-1.50"},
		{"-0.01", 2, 0, "ff", "-0.01"},
		{"1.28", 2, 0, "0080", "1.28"},
		{"-1.28", 2, 0, "80", "-1.28"},
		{"12345678901234567890.123", 3, 0, "029d42b64e76714244cb", "12345678901234567890.123"},
		{"-92233720368547758.08", 2, 0, "8000000000000000", "-92233720368547758.08"},
		{"5", 0, 4, "00000005", "5"},
		{"-5", 0, 4, "fffffffb", "-5"},
		{"1e2", 1, 0, "03e8", "100.0"},
	} {
		u, err := parseDecimal(tc.in, 38, tc.scale)
		if err != nil {
			t.Errorf("parseDecimal(%s): %v", tc.in, err)
			continue
		}
		b := twosComplement(u, tc.size)
		if got := hexString(b); got != tc.hex {
			t.Errorf("%s: bytes %s, want %s", tc.in, got, tc.hex)
		}
		if got := string(appendDecimal(nil, b, tc.scale)); got != `"`+tc.out+`"` {
			t.Errorf("%s: rendered %s, want %q", tc.in, got, tc.out)
		}
	}
	if b := twosComplement(mustBig("128"), 1); b != nil {
		t.Errorf("128 in one byte: %x", b)
	}
	if got := string(appendDecimal(nil, nil, 2)); got != `"0.00"` {
		t.Errorf("empty bytes: %s", got)
	}
}

// TestTimeFormatting checks the hand-written date arithmetic against
// package time.
func TestTimeFormatting(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, -1, 1, 999, -999, -1000, 86_399_999, -86_400_000, 951_782_400_000 /* 2000-02-29 */, 253_402_300_799_999, -62_167_219_200_000,
		253_402_300_800_000, -62_167_219_200_001, math.MaxInt64, math.MinInt64}
	for range 20000 {
		values = append(values, rnd.Int64N(2*253_402_300_800_000)-253_402_300_800_000, int64(rnd.Uint64()))
	}
	for _, v := range values {
		if got, want := string(appendTimestamp(nil, v, false)), time.UnixMilli(v).UTC().Format(`"2006-01-02T15:04:05.000Z07:00"`); got != want {
			t.Fatalf("millis %d: %s, want %s", v, got, want)
		}
		if got, want := string(appendTimestamp(nil, v, true)), time.UnixMicro(v).UTC().Format(`"2006-01-02T15:04:05.000000Z07:00"`); got != want {
			t.Fatalf("micros %d: %s, want %s", v, got, want)
		}
		days := v % 4_000_000
		if got, want := string(appendDate(nil, days)), time.Unix(days*86400, 0).UTC().Format(`"2006-01-02"`); got != want {
			t.Fatalf("days %d: %s, want %s", days, got, want)
		}
	}
}
