package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/schemas"
)

// These tests need no broker: New does not dial, and Record (like the
// validation Publish does first) never touches Kafka.

var fixedNow = time.Date(2026, 11, 23, 18, 21, 7, 123_456_789, time.FixedZone("CET", 3600))

func newProducer(t testing.TB, opts ...producer.Option) *producer.Producer {
	t.Helper()
	opts = append([]producer.Option{
		producer.WithBrokers("127.0.0.1:1"), // unroutable: nothing here may dial
		producer.WithClock(func() time.Time { return fixedNow }),
	}, opts...)
	p, err := producer.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func catalog(t testing.TB) *codec.Catalog {
	t.Helper()
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func example(t testing.TB, typ string) json.RawMessage {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const orderPaid = `{"order_id":"ord_1","payment_id":"pay_1","amount":4747,"currency":"USD","method":"card","paid_at":"2026-11-23T18:21:07Z"}`

func TestNewNeedsBrokers(t *testing.T) {
	if _, err := producer.New(); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Errorf("New() without brokers = %v, want an error about brokers", err)
	}
	if _, err := producer.New(producer.WithBrokers("localhost")); err == nil {
		t.Error("New with a broker without port succeeded")
	}
	if _, err := producer.New(producer.WithBrokers("127.0.0.1:1"), producer.WithTopicPrefix("bad/prefix")); err == nil {
		t.Error("New with an invalid topic prefix succeeded")
	}
}

func TestRecordInvalidEvents(t *testing.T) {
	p := newProducer(t)
	for _, tc := range []struct {
		name string
		ev   producer.Event
		msg  []string // parts of the message
	}{
		{"unknown type", producer.Event{Type: "order.teleported", TenantID: "t1", Data: orderPaid},
			[]string{`unknown event type "order.teleported"`, "order.paid", "payment.succeeded"}},
		{"empty type", producer.Event{TenantID: "t1", Data: orderPaid}, []string{`unknown event type ""`}},
		{"missing tenant", producer.Event{Type: "order.paid", Data: orderPaid}, []string{"tenant id is required"}},
		{"no data", producer.Event{Type: "order.paid", TenantID: "t1"}, []string{"order.paid data", "data is required"}},
		{"data not JSON", producer.Event{Type: "order.paid", TenantID: "t1", Data: "{not json"}, []string{"order.paid data", "invalid JSON"}},
		{"wrong field type", producer.Event{Type: "order.paid", TenantID: "t1", Data: json.RawMessage(strings.Replace(orderPaid, "4747", `"47.47"`, 1))},
			[]string{"order.paid data", "data.amount", "want long"}},
		{"missing field", producer.Event{Type: "order.paid", TenantID: "t1", Data: []byte(`{"order_id":"ord_1"}`)},
			[]string{"data.payment_id", "missing required field"}},
		{"unknown field", producer.Event{Type: "order.paid", TenantID: "t1", Data: []byte(strings.Replace(orderPaid, `"order_id"`, `"extra":1,"order_id"`, 1))},
			[]string{"data.extra", "unknown field"}},
		{"bad enum", producer.Event{Type: "order.paid", TenantID: "t1", Data: strings.Replace(orderPaid, `"card"`, `"cash"`, 1)},
			[]string{"data.method"}},
		{"data of another type", producer.Event{Type: "payment.succeeded", TenantID: "t1", Data: json.RawMessage(orderPaid)},
			[]string{"payment.succeeded data"}},
		{"native data of the wrong shape", producer.Event{Type: "order.paid", TenantID: "t1", Data: map[string]any{"order_id": 5}},
			[]string{"order.paid data"}},
		{"bad previous data", producer.Event{Type: "order.paid", TenantID: "t1", Data: orderPaid, PreviousData: `{"order_id":"x"}`},
			[]string{"order.paid previous_data", "missing required field"}},
		{"too large", producer.Event{Type: "order.paid", TenantID: "t1", Data: bigOrder(kafka.MaxEventBytes)},
			[]string{"the event's record is 900", "the most is 900000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := p.Record(tc.ev)
			if err == nil {
				t.Fatalf("Record = %v, want an error", rec)
			}
			if !errors.Is(err, producer.ErrInvalidEvent) {
				t.Errorf("error %q does not wrap ErrInvalidEvent", err)
			}
			if !strings.HasPrefix(err.Error(), "producer: invalid event: ") {
				t.Errorf("error %q does not start with %q", err, "producer: invalid event: ")
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	// Field errors stay reachable as *codec.ValidationError.
	_, err := p.Record(producer.Event{Type: "order.paid", TenantID: "t1", Data: strings.Replace(orderPaid, "4747", "true", 1)})
	var ve *codec.ValidationError
	if !errors.As(err, &ve) || ve.Path != "data.amount" {
		t.Errorf("error %v: want a *codec.ValidationError at data.amount", err)
	}
}

// bigOrder is order.paid data with an order id of n bytes.
func bigOrder(n int) string {
	return strings.Replace(orderPaid, `"ord_1"`, `"`+strings.Repeat("x", n)+`"`, 1)
}

// An event just under the limit is accepted; its record is the size the
// router and deliverer check (kafka.RecordBytes).
func TestRecordUnderTheSizeLimit(t *testing.T) {
	p := newProducer(t)
	rec, err := p.Record(producer.Event{Type: "order.paid", TenantID: "t1", Data: bigOrder(kafka.MaxEventBytes - 1000)})
	if err != nil {
		t.Fatal(err)
	}
	if n := kafka.RecordBytes(rec); n > kafka.MaxEventBytes || n < kafka.MaxEventBytes-1000 {
		t.Errorf("record of %d bytes, want between %d and %d", n, kafka.MaxEventBytes-1000, kafka.MaxEventBytes)
	}
}

// Publish and PublishBatch reject invalid events before touching Kafka: with
// an unroutable broker they return at once.
func TestPublishRejectsInvalidEventsWithoutKafka(t *testing.T) {
	p := newProducer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := p.Publish(ctx, producer.Event{Type: "order.paid", Data: orderPaid}); !errors.Is(err, producer.ErrInvalidEvent) {
		t.Errorf("Publish without tenant = %v, want ErrInvalidEvent", err)
	}
	ids, err := p.PublishBatch(ctx, []producer.Event{
		{Type: "order.paid", TenantID: "t1", Data: orderPaid},
		{Type: "nope.nope", TenantID: "t1", Data: orderPaid},
	})
	if !errors.Is(err, producer.ErrInvalidEvent) || !strings.Contains(err.Error(), "event 1: ") || ids != nil {
		t.Errorf("PublishBatch with an invalid second event = %v, %v; want ErrInvalidEvent naming event 1", ids, err)
	}
	if ctx.Err() != nil {
		t.Error("validation waited for the context: it tried to reach Kafka")
	}
}

func TestRecord(t *testing.T) {
	cat := catalog(t)
	p := newProducer(t, producer.WithTopicPrefix("acme"))
	data := example(t, "payment.succeeded")
	rec, err := p.Record(producer.Event{Type: "payment.succeeded", TenantID: "t1", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "acme.events" {
		t.Errorf("topic = %q, want acme.events", rec.Topic)
	}
	if string(rec.Key) != "t1" {
		t.Errorf("key = %q, want the tenant (t1)", rec.Key)
	}
	env, err := cat.DecodeEnvelope(rec.Value)
	if err != nil {
		t.Fatalf("the record value is no envelope: %v", err)
	}
	if len(rec.Headers) != 1 || rec.Headers[0].Key != "hookstream-event-id" || string(rec.Headers[0].Value) != env.ID {
		t.Errorf("headers = %v, want hookstream-event-id = %s", rec.Headers, env.ID)
	}
	if !strings.HasPrefix(env.ID, "evt_") || len(env.ID) != len("evt_")+26 {
		t.Errorf("generated id %q, want evt_ and 26 characters", env.ID)
	}
	if env.Type != "payment.succeeded" || env.TenantID != "t1" || env.PreviousData != nil {
		t.Errorf("envelope = %+v", env)
	}
	if want := fixedNow.UTC().Truncate(time.Millisecond); !env.OccurredAt.Equal(want) || env.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt = %v, want the clock's now in UTC ms: %v", env.OccurredAt, want)
	}
	typ, js, err := cat.DataToJSON(env.Data)
	if err != nil || typ != "payment.succeeded" {
		t.Fatalf("DataToJSON = %q, %v", typ, err)
	}
	assertSameJSON(t, js, data)

	// Every record gets its own id.
	rec2, err := p.Record(producer.Event{Type: "payment.succeeded", TenantID: "t1", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if string(rec2.Headers[0].Value) == env.ID {
		t.Error("two records got the same event id")
	}
}

func TestRecordKeepsGivenFields(t *testing.T) {
	cat := catalog(t)
	p := newProducer(t)
	occurred := time.Date(2025, 2, 3, 4, 5, 6, 789_999_999, time.FixedZone("X", -7*3600))
	rec, err := p.Record(producer.Event{
		Type: "order.paid", TenantID: "t1", Data: orderPaid,
		Key: "order-17", ID: "evt_given", OccurredAt: occurred,
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := cat.DecodeEnvelope(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "order-17" {
		t.Errorf("key = %q, want the explicit key", rec.Key)
	}
	if env.ID != "evt_given" || string(rec.Headers[0].Value) != "evt_given" {
		t.Errorf("id = %q (header %q), want evt_given", env.ID, rec.Headers[0].Value)
	}
	want := time.Date(2025, 2, 3, 11, 5, 6, 789_000_000, time.UTC) // truncated, not rounded
	if !env.OccurredAt.Equal(want) {
		t.Errorf("OccurredAt = %v, want %v", env.OccurredAt, want)
	}
}

func TestRecordDataForms(t *testing.T) {
	cat := catalog(t)
	p := newProducer(t)
	want, err := cat.EncodeJSON("order.paid", []byte(orderPaid))
	if err != nil {
		t.Fatal(err)
	}
	type orderPaidV1 struct {
		OrderID   string    `avro:"order_id"`
		PaymentID string    `avro:"payment_id"`
		Amount    int64     `avro:"amount"`
		Currency  string    `avro:"currency"`
		Method    string    `avro:"method"`
		PaidAt    time.Time `avro:"paid_at"`
	}
	native := orderPaidV1{"ord_1", "pay_1", 4747, "USD", "card", time.Date(2026, 11, 23, 18, 21, 7, 0, time.UTC)}
	for name, data := range map[string]any{
		"json.RawMessage": json.RawMessage(orderPaid),
		"[]byte":          []byte(orderPaid),
		"string":          orderPaid,
		"struct":          native,
		"*struct":         &native,
		"map": map[string]any{
			"order_id": "ord_1", "payment_id": "pay_1", "amount": int64(4747), "currency": "USD",
			"method": "card", "paid_at": native.PaidAt,
		},
	} {
		rec, err := p.Record(producer.Event{Type: "order.paid", TenantID: "t1", Data: data})
		if err != nil {
			t.Errorf("%s data: %v", name, err)
			continue
		}
		env, err := cat.DecodeEnvelope(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(env.Data) != string(want) {
			t.Errorf("%s data encodes to % x, want % x", name, env.Data, want)
		}
	}
}

func TestRecordPreviousData(t *testing.T) {
	cat := catalog(t)
	p := newProducer(t)
	cur := example(t, "user.updated")
	prev := json.RawMessage(`{"user_id":"usr_1","email":"old@example.com","role":"member","changed_fields":[],"updated_at":0}`)
	rec, err := p.Record(producer.Event{Type: "user.updated", TenantID: "t1", Data: cur, PreviousData: prev})
	if err != nil {
		t.Fatal(err)
	}
	env, err := cat.DecodeEnvelope(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if env.PreviousData == nil {
		t.Fatal("PreviousData not encoded")
	}
	typ, js, err := cat.DataToJSON(env.PreviousData)
	if err != nil || typ != "user.updated" {
		t.Fatalf("DataToJSON(previous) = %q, %v", typ, err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if got["email"] != "old@example.com" || got["role"] != "member" || got["name"] != nil {
		t.Errorf("previous data = %s", js)
	}
	_, curJS, err := cat.DataToJSON(env.Data)
	if err != nil {
		t.Fatal(err)
	}
	assertSameJSON(t, curJS, cur)
}

// assertSameJSON compares two JSON documents as values. Timestamps may be
// written differently (the catalog renders them as RFC 3339 with
// milliseconds), so strings that parse as the same time compare equal.
func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !sameJSON(g, w) {
		t.Errorf("JSON differs:\ngot  %s\nwant %s", got, want)
	}
}

func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if !sameJSON(v, b[k]) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	case string:
		bs, ok := b.(string)
		if !ok {
			return false
		}
		if a == bs {
			return true
		}
		ta, errA := time.Parse(time.RFC3339Nano, a)
		tb, errB := time.Parse(time.RFC3339Nano, bs)
		return errA == nil && errB == nil && ta.Equal(tb)
	default:
		return reflect.DeepEqual(a, b)
	}
}
