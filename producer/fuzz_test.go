package producer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"testing"

	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/schemas"
)

// FuzzRecord feeds arbitrary bytes as the JSON data of a real event type.
// Record must never panic; every error must be an ErrInvalidEvent; and an
// accepted event must decode back: its data rendered by DataToJSON is valid
// JSON that encodes to exactly the same Avro bytes again.
//
//	go test -run '^$' -fuzz FuzzRecord -fuzztime 15s ./producer
func FuzzRecord(f *testing.F) {
	cat := catalog(f)
	types := cat.Types()
	for i, typ := range types {
		if b, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json"); err == nil {
			f.Add(uint8(i), b)
		}
	}
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`, `1e400`, `{"amount":1e400}`, `{"amount":-0}`, ``, `{`,
		orderPaid, `{"order_id":"ord_1","payment_id":"p","amount":9223372036854775807,"currency":"","method":"other","paid_at":-62135596800000}`,
		`{"order_id":"\ud800","payment_id":"p","amount":1,"currency":"\u2028","method":"card","paid_at":"2026-01-01T00:00:00.123456789+14:00"}`,
	} {
		f.Add(uint8(0), []byte(s))
	}
	p := newProducer(f)
	f.Fuzz(func(t *testing.T, idx uint8, data []byte) {
		typ := types[int(idx)%len(types)]
		rec, err := p.Record(producer.Event{Type: typ, TenantID: "t1", Data: json.RawMessage(data)})
		if err != nil {
			if !errors.Is(err, producer.ErrInvalidEvent) {
				t.Fatalf("%s: error %v does not wrap ErrInvalidEvent", typ, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("%s: Record accepted invalid JSON %q", typ, data)
		}
		env, err := cat.DecodeEnvelope(rec.Value)
		if err != nil {
			t.Fatalf("%s: the envelope does not decode: %v", typ, err)
		}
		if env.Type != typ || env.TenantID != "t1" || string(rec.Key) != "t1" {
			t.Fatalf("envelope %+v for %s", env, typ)
		}
		gotType, js, err := cat.DataToJSON(env.Data)
		if err != nil || gotType != typ {
			t.Fatalf("%s: DataToJSON = %q, %v", typ, gotType, err)
		}
		if !json.Valid(js) {
			t.Fatalf("%s: DataToJSON rendered invalid JSON %s", typ, js)
		}
		again, err := cat.EncodeJSON(typ, js)
		if err != nil {
			t.Fatalf("%s: the rendered data %s does not encode again: %v\ninput %s", typ, js, err, data)
		}
		if !bytes.Equal(again, env.Data) {
			t.Fatalf("%s: data does not round-trip through DataToJSON:\ninput    %s\nrendered %s\nfirst  % x\nsecond % x", typ, data, js, env.Data, again)
		}
	})
}
