package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
	publisher "github.com/hookstream/hookstream/producer"
)

// fakeProducer records what route produces and completes each record at
// once with err.
type fakeProducer struct {
	recs []*kgo.Record
	err  error
}

func (f *fakeProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	f.recs = append(f.recs, r)
	promise(r, f.err)
}

func (f *fakeProducer) topics() []string {
	out := make([]string, len(f.recs))
	for i, r := range f.recs {
		out[i] = r.Topic
	}
	return out
}

// fixture is a Router over a registry on kfake holding, for tenant t1:
//
//	t1-a  *                  active
//	t1-b  payment.*          disabled
//	t1-c  order.*            active
//	t1-d  payment.succeeded  active
//	t1-e  *                  deleted
//
// and t2-a (*) for tenant t2.
type fixture struct {
	r    *Router
	reg  *registry.Registry
	cat  *codec.Catalog
	cfg  kafka.Config
	prod *publisher.Producer
	adm  *kadm.Client // of a client the test's cleanup closes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := kafkatest.Start(t)
	cfg := kafka.Config{Brokers: c.Addrs, Prefix: "rt", ReplicationFactor: c.ReplicationFactor()}
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, cfg.ClientOpts("test-admin")...)
	if err := cfg.EnsureTopics(ctx, kadm.NewClient(cl), cfg.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	reg, err := registry.Open(ctx, cfg, cat, registry.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	adm := registry.NewAdmin(cfg, cl, cat, reg)
	for _, e := range []registry.Endpoint{
		{ID: "t1-d", TenantID: "t1", EventTypes: []string{"payment.succeeded"}},
		{ID: "t1-c", TenantID: "t1", EventTypes: []string{"order.*"}},
		{ID: "t1-b", TenantID: "t1", EventTypes: []string{"payment.*"}},
		{ID: "t1-a", TenantID: "t1", EventTypes: []string{"*"}},
		{ID: "t1-e", TenantID: "t1", EventTypes: []string{"*"}},
		{ID: "t2-a", TenantID: "t2", EventTypes: []string{"*"}},
	} {
		e.URL = "https://" + e.ID + ".example/hooks"
		if _, err := adm.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.SetStatus(ctx, "t1-b", registry.StatusDisabled, "paused"); err != nil {
		t.Fatal(err)
	}
	if err := adm.Delete(ctx, "t1-e"); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Kafka: cfg, Logger: quiet}, reg, cat)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := publisher.New(publisher.WithKafkaConfig(cfg), publisher.WithCatalog(cat)) // does not dial
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &fixture{r: r, reg: reg, cat: cat, cfg: cfg, prod: prod, adm: kadm.NewClient(cl)}
}

var sampleData = map[string]string{
	"payment.succeeded": `{"payment_id":"pay_1","customer_id":"cus_1","amount":4999,"currency":"USD","method":"card","captured_at":"2026-11-23T18:21:07Z"}`,
	"order.paid":        `{"order_id":"ord_1","payment_id":"pay_1","amount":4747,"currency":"USD","method":"card","paid_at":"2026-11-23T18:21:07Z"}`,
}

// event returns the record the producer library writes for an event of
// type typ (data from schemas/events/<typ>/example.json) and tenant,
// positioned as if consumed from partition 3 at offset 42.
func (f *fixture) event(t *testing.T, typ, tenant string) *kgo.Record {
	t.Helper()
	data := sampleData[typ]
	if data == "" {
		t.Fatalf("no sample data for %s", typ)
	}
	rec, err := f.prod.Record(publisher.Event{Type: typ, TenantID: tenant, Data: data, Key: "order-17"})
	if err != nil {
		t.Fatal(err)
	}
	rec.Partition, rec.Offset = 3, 42
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte("00-abc-def-01")})
	return rec
}

func TestRouteFansOutToSubscribedEndpoints(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		typ, tenant string
		want        []string // endpoint ids, in id order
	}{
		// t1-b is disabled but takes fan-out; t1-e is deleted and does not.
		{"payment.succeeded", "t1", []string{"t1-a", "t1-b", "t1-d"}},
		{"order.paid", "t1", []string{"t1-a", "t1-c"}},
		{"order.paid", "t2", []string{"t2-a"}},
		{"payment.succeeded", "t3", nil}, // a tenant without endpoints
	} {
		p := &fakeProducer{}
		rec := f.event(t, tc.typ, tc.tenant)
		var matches []*registry.Endpoint
		promised := 0
		n, err := f.r.route(t.Context(), p, rec, &matches, func(_ *kgo.Record, err error) {
			promised++
			if err != nil {
				t.Errorf("promise got %v", err)
			}
		})
		if err != nil {
			t.Errorf("%s for %s: route error %v", tc.typ, tc.tenant, err)
			continue
		}
		var wantTopics []string
		for _, id := range tc.want {
			wantTopics = append(wantTopics, f.cfg.Topics().Endpoint(id))
		}
		if n != len(tc.want) || !slices.Equal(p.topics(), wantTopics) || promised != n {
			t.Errorf("%s for %s: route = %d to %v (%d promises), want %d to %v", tc.typ, tc.tenant, n, p.topics(), promised, len(tc.want), wantTopics)
		}
		for _, out := range p.recs {
			if !bytes.Equal(out.Key, rec.Key) || !bytes.Equal(out.Value, rec.Value) || !slices.EqualFunc(out.Headers, rec.Headers, headerEqual) {
				t.Errorf("routed record to %s changed the record: key %q headers %v", out.Topic, out.Key, out.Headers)
			}
			if out.Partition != 0 || out.Offset != 0 {
				t.Errorf("routed record to %s carries the source position %d/%d", out.Topic, out.Partition, out.Offset)
			}
		}
	}
}

func headerEqual(a, b kgo.RecordHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }

// route reuses the caller's matches slice; a later event must not see the
// endpoints of an earlier one.
func TestRouteReusesMatches(t *testing.T) {
	f := newFixture(t)
	var matches []*registry.Endpoint
	p := &fakeProducer{}
	if n, err := f.r.route(t.Context(), p, f.event(t, "payment.succeeded", "t1"), &matches, func(*kgo.Record, error) {}); n != 3 || err != nil {
		t.Fatalf("first route = %d, %v", n, err)
	}
	p = &fakeProducer{}
	if n, err := f.r.route(t.Context(), p, f.event(t, "order.paid", "t2"), &matches, func(*kgo.Record, error) {}); n != 1 || err != nil {
		t.Fatalf("second route = %d, %v", n, err)
	}
	if got := p.topics(); !slices.Equal(got, []string{f.cfg.Topics().Endpoint("t2-a")}) {
		t.Errorf("second route produced to %v", got)
	}
	if len(matches) != 1 || matches[0].ID != "t2-a" {
		t.Errorf("matches after the second route = %d entries", len(matches))
	}
}

// rawEnvelope lets a test write envelopes the codec's EncodeEnvelope would
// refuse (it checks the data's fingerprint).
type rawEnvelope struct {
	ID           string    `avro:"id"`
	Type         string    `avro:"type"`
	TenantID     string    `avro:"tenant_id"`
	OccurredAt   time.Time `avro:"occurred_at"`
	Data         []byte    `avro:"data"`
	PreviousData []byte    `avro:"previous_data"`
}

func (f *fixture) raw(t *testing.T, e rawEnvelope) []byte {
	t.Helper()
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.UnixMilli(1_790_000_000_000)
	}
	b, err := f.cat.Marshal(codec.EnvelopeName, &e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigData is payment.succeeded data of at least n bytes (a long payment id).
func (f *fixture) bigData(t *testing.T, n int) []byte {
	t.Helper()
	js := strings.Replace(sampleData["payment.succeeded"], `"pay_1"`, `"pay_`+strings.Repeat("x", n)+`"`, 1)
	b, err := f.cat.EncodeJSON("payment.succeeded", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) data(t *testing.T, typ string) []byte {
	t.Helper()
	b, err := f.cat.EncodeJSON(typ, []byte(sampleData[typ]))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckAccepts(t *testing.T) {
	f := newFixture(t)
	paid := f.data(t, "order.paid")
	// Data written with an older version of the type's schema is routed.
	v1, ok := f.cat.Version("payment.succeeded", 1)
	if !ok {
		t.Fatal("no payment.succeeded v1")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(`{"payment_id":"pay_1","customer_id":"cus_1","amount":1,"currency":"USD","method":"card","metadata":{}}`), &m); err != nil {
		t.Fatal(err)
	}
	m["amount"] = int64(1)
	m["captured_at"] = time.UnixMilli(1_790_000_000_000)
	m["order_id"], m["card"] = nil, nil
	m["metadata"] = map[string]string{}
	body, err := avro.Marshal(v1.Schema, m)
	if err != nil {
		t.Fatal(err)
	}
	oldData := append(codec.AppendHeader(nil, v1.Fingerprint), body...)

	for name, val := range map[string][]byte{
		"producer record":  f.event(t, "order.paid", "t1").Value,
		"previous_data":    f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", TenantID: "t1", Data: paid, PreviousData: paid}),
		"old data version": f.raw(t, rawEnvelope{ID: "evt_1", Type: "payment.succeeded", TenantID: "t1", Data: oldData}),
	} {
		env, err := f.r.check(&kgo.Record{Value: val})
		if err != nil || env == nil || env.TenantID != "t1" {
			t.Errorf("%s: check = %+v, %v; want the envelope", name, env, err)
		}
	}
}

func TestQuarantine(t *testing.T) {
	f := newFixture(t)
	paid := f.data(t, "order.paid")
	unknownFP := append(codec.AppendHeader(nil, 0x0123456789abcdef), paid[codec.HeaderLen:]...)
	valid := f.event(t, "order.paid", "t1").Value
	for _, tc := range []struct {
		name     string
		value    []byte
		sentinel error  // errors.Is target, nil = none to check
		msg      string // prefix of the hookstream-error header
	}{
		{"garbage", []byte("hello, world"), codec.ErrNotSingleObject, "envelope: "},
		{"empty value", nil, codec.ErrNotSingleObject, "envelope: "},
		{"event data instead of an envelope", paid, codec.ErrUnknownSchema, "envelope: "},
		{"truncated envelope", valid[:len(valid)-5], nil, "envelope: "},
		{"trailing bytes", append(slices.Clone(valid), 0), nil, "envelope: "},
		{"no id", f.raw(t, rawEnvelope{Type: "order.paid", TenantID: "t1", Data: paid}), nil, "envelope: id and tenant_id are required"},
		{"no tenant", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", Data: paid}), nil, "envelope: id and tenant_id are required"},
		{"unknown data fingerprint", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", TenantID: "t1", Data: unknownFP}), codec.ErrUnknownSchema, "data: "},
		{"data not single object", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", TenantID: "t1", Data: []byte(`{"order_id":"x"}`)}), codec.ErrNotSingleObject, "data: "},
		{"data of another type", f.raw(t, rawEnvelope{ID: "evt_1", Type: "payment.succeeded", TenantID: "t1", Data: paid}), codec.ErrTypeMismatch, "data: "},
		{"unknown type", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.teleported", TenantID: "t1", Data: paid}), codec.ErrTypeMismatch, "data: "},
		{"previous_data of another type", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", TenantID: "t1", Data: paid, PreviousData: f.data(t, "payment.succeeded")}), codec.ErrTypeMismatch, "previous_data: "},
		{"previous_data unknown", f.raw(t, rawEnvelope{ID: "evt_1", Type: "order.paid", TenantID: "t1", Data: paid, PreviousData: unknownFP}), codec.ErrUnknownSchema, "previous_data: "},
		// Key (2), value and the header (11 + 6) add up to one byte over.
		{"over the size limit", make([]byte, kafka.MaxEventBytes-18), ErrEventTooLarge, "event too large: 900001 bytes"},
		{"valid but over the size limit", f.raw(t, rawEnvelope{ID: "evt_1", Type: "payment.succeeded", TenantID: "t1", Data: f.bigData(t, kafka.MaxEventBytes)}), ErrEventTooLarge, "event too large: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &kgo.Record{
				Topic: f.cfg.Topics().Events(), Partition: 5, Offset: 1234567,
				Key: []byte("k1"), Value: tc.value,
				Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-abc")}},
			}
			p := &fakeProducer{}
			var matches []*registry.Endpoint
			promised := 0
			n, err := f.r.route(t.Context(), p, src, &matches, func(*kgo.Record, error) { promised++ })
			if err == nil || n != 0 {
				t.Fatalf("route = %d, %v; want it quarantined", n, err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("route error %v does not wrap %v", err, tc.sentinel)
			}
			if len(p.recs) != 1 || promised != 1 {
				t.Fatalf("route produced %d records (%d promises), want 1 to the quarantine", len(p.recs), promised)
			}
			q := p.recs[0]
			// Too large to copy: key, value and headers are left out.
			omitted := errors.Is(tc.sentinel, ErrEventTooLarge)
			wantKey, wantValue := "k1", tc.value
			if omitted {
				wantKey, wantValue = "", nil
			}
			if q.Topic != f.cfg.Topics().Invalid() || string(q.Key) != wantKey || !bytes.Equal(q.Value, wantValue) {
				t.Errorf("quarantined record: topic %s key %q value of %d bytes", q.Topic, q.Key, len(q.Value))
			}
			var want []kgo.RecordHeader
			if !omitted {
				want = append(want, kgo.RecordHeader{Key: "traceparent", Value: []byte("00-abc")})
			}
			want = append(want, []kgo.RecordHeader{
				{Key: HeaderError, Value: []byte(err.Error())},
				{Key: HeaderSourceTopic, Value: []byte(f.cfg.Topics().Events())},
				{Key: HeaderSourcePartition, Value: []byte("5")},
				{Key: HeaderSourceOffset, Value: []byte(strconv.Itoa(1234567))},
			}...)
			if !slices.EqualFunc(q.Headers, want, headerEqual) {
				t.Errorf("quarantine headers = %s, want %s", fmtHeaders(q.Headers), fmtHeaders(want))
			}
			if !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("hookstream-error %q does not start with %q", err, tc.msg)
			}
			if len(src.Headers) != 1 {
				t.Errorf("quarantine changed the source record's headers: %s", fmtHeaders(src.Headers))
			}
		})
	}
}

func fmtHeaders(hs []kgo.RecordHeader) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key + "=" + strconv.Quote(string(h.Value)) + " ")
	}
	return b.String()
}

// The promise route passes is the one the producer completes: a produce
// failure reaches the transaction logic.
func TestRoutePassesProduceErrors(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	p := &fakeProducer{err: boom}
	var got []error
	var matches []*registry.Endpoint
	if _, err := f.r.route(t.Context(), p, f.event(t, "order.paid", "t1"), &matches, func(_ *kgo.Record, err error) { got = append(got, err) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !errors.Is(got[0], boom) || !errors.Is(got[1], boom) {
		t.Errorf("promise errors = %v, want boom twice", got)
	}
}

func TestNewDefaults(t *testing.T) {
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, nil, cat); err == nil || !strings.Contains(err.Error(), "router: kafka: no brokers") {
		t.Errorf("New without brokers = %v", err)
	}
	r, err := New(Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}, Prefix: "p"}}, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.Group != DefaultGroup || !strings.HasPrefix(r.cfg.TransactionalID, "hookstream-router-") || r.cfg.MaxPollRecords != DefaultMaxPollRecords ||
		r.log == nil || r.topics.Events() != "p.events" || r.cfg.Compression != "none" || r.cfg.TxnLinger != 10*time.Millisecond ||
		r.produceLinger() != 5*time.Millisecond || r.cfg.Guarantee != ExactlyOnce || r.cfg.CommitInterval != time.Second {
		t.Errorf("defaults: %+v", r.cfg)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Guarantee: "exactly-twice"}, `router: unknown guarantee "exactly-twice" (exactly-once or at-least-once)`},
		{Config{Guarantee: AtLeastOnce, CommitInterval: 10 * time.Millisecond}, "router: commit interval 10ms is under the minimum 100ms"},
	} {
		c.cfg.Kafka = kafka.Config{Brokers: []string{"127.0.0.1:1"}}
		if _, err := New(c.cfg, nil, cat); err == nil || err.Error() != c.want {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := New(Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, Compression: "brotli"}, nil, cat); err == nil ||
		!strings.Contains(err.Error(), `unknown compression "brotli"`) {
		t.Errorf("New with an unknown compression = %v", err)
	}
	r, err = New(Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, TxnLinger: -1, Compression: "zstd"}, nil, cat)
	if err != nil || r.produceLinger() != 0 {
		t.Errorf("New without linger: %v, produce linger %v", err, r.produceLinger())
	}
	r, err = New(Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, Group: "g", TransactionalID: "tx", MaxPollRecords: 7}, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.Group != "g" || r.cfg.TransactionalID != "tx" || r.cfg.MaxPollRecords != 7 {
		t.Errorf("explicit settings not kept: %+v", r.cfg)
	}
}

// Two routers in one process share their metric series.
func TestNewTwiceWithOneRegisterer(t *testing.T) {
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, Registerer: reg}
	r1, err := New(cfg, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := New(cfg, nil, cat)
	if err != nil {
		t.Fatal(err)
	}
	if r1.m.events != r2.m.events || r1.m.fanout != r2.m.fanout {
		t.Error("two routers on one registerer do not share their counters")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"hookstream_router_events_total", "hookstream_router_transactions_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s not registered (got %v)", want, names)
		}
	}
}
