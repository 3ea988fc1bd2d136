package codec

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
)

func TestDefaultCatalogContents(t *testing.T) {
	c := defaultCatalog(t)
	if c2, _ := Default(); c2 != c {
		t.Error("Default loaded the catalog twice")
	}
	types := c.Types()
	if !slices.IsSorted(types) {
		t.Errorf("Types not sorted: %v", types)
	}
	categories := map[string]int{}
	withV2 := 0
	for _, typ := range types {
		if !validEventType(typ) {
			t.Errorf("bad type name %q", typ)
		}
		categories[strings.Split(typ, ".")[0]]++
		latest, _ := c.Latest(typ)
		if latest.Version >= 2 {
			withV2++
		}
		for v := 1; v <= latest.Version; v++ {
			es, ok := c.Version(typ, v)
			if !ok || es.Version != v || es.Type != typ {
				t.Errorf("%s: Version(%d) = %+v, %v", typ, v, es, ok)
				continue
			}
			if got, ok := c.ByFingerprint(es.Fingerprint); !ok || got != es {
				t.Errorf("%s v%d: ByFingerprint does not find it", typ, v)
			}
			if fp, _ := SchemaFingerprint(es.JSON); fp != es.Fingerprint {
				t.Errorf("%s v%d: fingerprint %x, JSON says %x", typ, v, es.Fingerprint, fp)
			}
			if rs, ok := es.Schema.(*avro.RecordSchema); !ok || rs.FullName() != eventRecordName(typ) || rs.Doc() == "" {
				t.Errorf("%s v%d: want a documented record %s", typ, v, eventRecordName(typ))
			}
		}
	}
	delete(categories, "endpoint")
	if n := len(types) - 1; n < 22 {
		t.Errorf("%d event types besides endpoint.disabled, want >= 22", n)
	}
	for _, cat := range []string{"resource", "user", "payment", "order", "organization"} {
		if categories[cat] < 3 {
			t.Errorf("category %s has %d types, want >= 3", cat, categories[cat])
		}
	}
	if len(categories) < 5 {
		t.Errorf("%d categories, want >= 5", len(categories))
	}
	if withV2 == 0 {
		t.Error("no event type has a v2")
	}
	if _, ok := c.Version("payment.succeeded", 2); !ok {
		t.Error("payment.succeeded has no v2")
	}

	// The platform's own event has exactly the agreed fields.
	es, ok := c.Latest("endpoint.disabled")
	if !ok {
		t.Fatal("no endpoint.disabled")
	}
	var got []string
	for _, f := range es.node.fields {
		got = append(got, f.name+":"+f.typ.describe())
	}
	want := []string{"endpoint_id:string", "tenant_id:string", "url:string", "reason:string",
		"failing_since:timestamp-millis", "disabled_at:timestamp-millis"}
	if !slices.Equal(got, want) {
		t.Errorf("endpoint.disabled fields %v, want %v", got, want)
	}

	// Lookups of things that are not there.
	if _, ok := c.Latest("nope.nope"); ok {
		t.Error("Latest of unknown type")
	}
	if _, ok := c.Version("payment.succeeded", 0); ok {
		t.Error("Version 0")
	}
	if _, ok := c.Version("payment.succeeded", 99); ok {
		t.Error("Version 99")
	}
	if _, ok := c.ByFingerprint(0); ok {
		t.Error("ByFingerprint(0)")
	}
}

// TestSchemaConventions checks what the task asks of the event schemas as a
// whole: realistic fields using every construct receivers must handle.
func TestSchemaConventions(t *testing.T) {
	c := defaultCatalog(t)
	seen := map[string]bool{}
	var walk func(n *node, depth int)
	walk = func(n *node, depth int) {
		if depth > 20 {
			return
		}
		seen[n.describe()] = true
		seen[n.kind.String()] = true
		if n.kind == kindUnion && n.optional >= 0 {
			seen["optional"] = true
		}
		if n.kind == kindUnion && n.optional < 0 {
			seen["general union"] = true
		}
		if n.kind == kindEnum && n.enumDefault >= 0 {
			seen["enum with default"] = true
		}
		for _, f := range n.fields {
			walk(f.typ, depth+1)
		}
		for _, b := range n.branches {
			walk(b, depth+1)
		}
		if n.items != nil {
			walk(n.items, depth+1)
		}
	}
	for _, typ := range c.Types() {
		es, _ := c.Latest(typ)
		walk(es.node, 0)
		hasTime := false
		for _, f := range es.node.fields {
			if f.typ.logical == logicalTimestampMillis {
				hasTime = true
			}
		}
		if !hasTime {
			t.Errorf("%s has no timestamp-millis field", typ)
		}
	}
	for _, want := range []string{"timestamp-millis", "date", "uuid", "decimal(6,4)", "enum", "array", "map",
		"fixed", "optional", "general union", "enum with default", "record", "double", "boolean", "int", "long"} {
		if !seen[want] {
			t.Errorf("no event schema uses %s", want)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	good := schemaTree(t)
	if _, err := Load(good); err != nil {
		t.Fatalf("copy of the real tree: %v", err)
	}
	const rec = `{"type":"record","name":"PaymentSucceeded","namespace":"hookstream.events.payment","fields":[{"name":"a","type":"string"}]}`
	cases := []struct {
		name   string
		change func(m fstest.MapFS)
		want   string
	}{
		{"no envelope", func(m fstest.MapFS) { delete(m, "envelope.avsc") }, "envelope.avsc must define"},
		{"bad type dir", func(m fstest.MapFS) { m["events/Payment.Done/v1.avsc"] = &fstest.MapFile{Data: []byte(rec)} }, "lower-case words"},
		{"single word type", func(m fstest.MapFS) { m["events/payment/v1.avsc"] = &fstest.MapFile{Data: []byte(rec)} }, "lower-case words"},
		{"wrong record name", func(m fstest.MapFS) {
			m["events/payment.done/v1.avsc"] = &fstest.MapFile{Data: []byte(rec)}
		}, "want hookstream.events.payment.PaymentDone"},
		{"version gap", func(m fstest.MapFS) {
			m["events/payment.succeeded/v4.avsc"] = &fstest.MapFile{Data: []byte(strings.Replace(
				string(m["events/payment.succeeded/v2.avsc"].Data), `{"name": "receipt_url"`, `{"name": "x", "type": "int", "default": 0}, {"name": "receipt_url"`, 1))}
		}, "v3.avsc missing"},
		{"leading zero", func(m fstest.MapFS) {
			m["events/payment.succeeded/v03.avsc"] = m["events/payment.succeeded/v2.avsc"]
		}, "want v<N>.avsc"},
		{"stray schema", func(m fstest.MapFS) {
			m["events/payment.succeeded/latest.avsc"] = m["events/payment.succeeded/v2.avsc"]
		}, "want v<N>.avsc"},
		{"schema directly in events", func(m fstest.MapFS) { m["events/x.avsc"] = &fstest.MapFile{Data: []byte(rec)} }, "events/<type>/v<N>.avsc"},
		{"same canonical form", func(m fstest.MapFS) {
			// Only a doc string changed: nothing to tell the versions apart by.
			m["events/payment.succeeded/v3.avsc"] = &fstest.MapFile{Data: []byte(strings.Replace(
				string(m["events/payment.succeeded/v2.avsc"].Data), "v2 adds", "v3 documents", 1))}
		}, "same canonical form"},
		{"incompatible version", func(m fstest.MapFS) {
			m["events/payment.succeeded/v3.avsc"] = &fstest.MapFile{Data: []byte(`{"type":"record","name":"PaymentSucceeded","namespace":"hookstream.events.payment","fields":[{"name":"payment_id","type":"string"},{"name":"new_required","type":"string"}]}`)}
		}, "cannot be read as v3"},
		{"not a record", func(m fstest.MapFS) {
			m["events/payment.done/v1.avsc"] = &fstest.MapFile{Data: []byte(`"string"`)}
		}, "must be a record"},
		{"invalid schema", func(m fstest.MapFS) {
			m["events/payment.done/v1.avsc"] = &fstest.MapFile{Data: []byte(`{"type":"record","name":"PaymentDone","namespace":"hookstream.events.payment","fields":[{"name":"a","type":"nope"}]}`)}
		}, "unknown type"},
		{"record defined twice", func(m fstest.MapFS) { m["endpoint2.avsc"] = m["endpoint.avsc"] }, "same canonical form"},
		{"older version without current", func(m fstest.MapFS) { m["thing.v1.avsc"] = m["endpoint.avsc"] }, "without thing.avsc"},
		{"older version of another record", func(m fstest.MapFS) {
			m["endpoint.v1.avsc"] = &fstest.MapFile{Data: []byte(`{"type":"record","name":"Other","namespace":"hookstream","fields":[]}`)}
		}, "want hookstream.Endpoint"},
		{"bad older version name", func(m fstest.MapFS) { m["endpoint.old.avsc"] = m["endpoint.avsc"] }, "<name>.v<N>.avsc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := schemaTree(t)
			tc.change(m)
			_, err := Load(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEventRecordName(t *testing.T) {
	for typ, want := range map[string]string{
		"payment.succeeded":         "hookstream.events.payment.PaymentSucceeded",
		"organization.member_added": "hookstream.events.organization.OrganizationMemberAdded",
		"endpoint.disabled":         "hookstream.events.endpoint.EndpointDisabled",
		"a.b.c_d":                   "hookstream.events.a.b.ABCD",
	} {
		if got := eventRecordName(typ); got != want {
			t.Errorf("eventRecordName(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestCheckData(t *testing.T) {
	c := defaultCatalog(t)
	data := encodeExample(t, c, "payment.succeeded")
	if err := c.CheckData("payment.succeeded", data); err != nil {
		t.Fatal(err)
	}
	v1 := v1PaymentSucceeded(t, c)
	if err := c.CheckData("payment.succeeded", v1); err != nil {
		t.Errorf("older version: %v", err)
	}
	if err := c.CheckData("payment.failed", data); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("other type: %v, want ErrTypeMismatch", err)
	}
	if err := c.CheckData("payment.succeeded", AppendHeader(nil, 12345)); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("unknown fingerprint: %v, want ErrUnknownSchema", err)
	}
	env := c.envelope.current.fingerprint
	if err := c.CheckData("payment.succeeded", AppendHeader(nil, env)); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("envelope fingerprint as data: %v, want ErrUnknownSchema", err)
	}
	if err := c.CheckData("payment.succeeded", data[:5]); !errors.Is(err, ErrNotSingleObject) {
		t.Errorf("short: %v, want ErrNotSingleObject", err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.CheckData("payment.succeeded", data) }); n != 0 {
		t.Errorf("CheckData allocates %v times", n)
	}
}

// v1PaymentSucceeded is payment.succeeded data written with v1, by hamba.
func v1PaymentSucceeded(t testing.TB, c *Catalog) []byte {
	t.Helper()
	v1, _ := c.Version("payment.succeeded", 1)
	body, err := avro.Marshal(v1.Schema, map[string]any{
		"payment_id": "pay_1", "order_id": nil, "customer_id": "cus_1", "amount": int64(4999),
		"currency": "USD", "method": "card",
		"card":     map[string]any{"hookstream.events.payment.CardDetails": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2030}},
		"metadata": map[string]any{"k": "v"}, "captured_at": time.UnixMilli(1795000000123).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(AppendHeader(nil, v1.Fingerprint), body...)
}

func TestOlderVersionReadsAsLatest(t *testing.T) {
	c := defaultCatalog(t)
	typ, js, err := c.DataToJSON(v1PaymentSucceeded(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if typ != "payment.succeeded" {
		t.Errorf("type %q", typ)
	}
	want := `{"payment_id":"pay_1","order_id":null,"customer_id":"cus_1","amount":4999,"currency":"USD","method":"card",` +
		`"card":{"brand":"visa","last4":"4242","exp_month":1,"exp_year":2030},"metadata":{"k":"v"},` +
		`"captured_at":"2026-11-18T11:06:40.123Z","fee_amount":0,"receipt_url":null}`
	if string(js) != want {
		t.Errorf("v1 data as JSON\n got %s\nwant %s", js, want)
	}

	// The same through hamba, into a map and into a struct.
	var m map[string]any
	if _, err := c.DecodeNative(v1PaymentSucceeded(t, c), &m); err != nil {
		t.Fatal(err)
	}
	if m["fee_amount"] != int64(0) || m["receipt_url"] != nil || m["amount"] != int64(4999) {
		t.Errorf("DecodeNative: %v", m)
	}
	var s struct {
		PaymentID  string    `avro:"payment_id"`
		Amount     int64     `avro:"amount"`
		FeeAmount  int64     `avro:"fee_amount"`
		ReceiptURL *string   `avro:"receipt_url"`
		CapturedAt time.Time `avro:"captured_at"`
	}
	s.FeeAmount = -1
	if typ, err := c.DecodeNative(v1PaymentSucceeded(t, c), &s); err != nil || typ != "payment.succeeded" {
		t.Fatal(typ, err)
	}
	if s.PaymentID != "pay_1" || s.Amount != 4999 || s.FeeAmount != 0 || s.ReceiptURL != nil || s.CapturedAt.UnixMilli() != 1795000000123 {
		t.Errorf("DecodeNative into struct: %+v", s)
	}
	if _, err := c.DecodeNative(AppendHeader(nil, 1), &s); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("DecodeNative unknown: %v", err)
	}
	if _, err := c.DecodeNative(v1PaymentSucceeded(t, c)[:20], &s); err == nil {
		t.Error("DecodeNative of truncated data succeeded")
	}
}

func TestEncodeNative(t *testing.T) {
	c := defaultCatalog(t)
	type reset struct {
		UserID      string    `avro:"user_id"`
		RequestID   string    `avro:"request_id"`
		IPAddress   *string   `avro:"ip_address"`
		UserAgent   *string   `avro:"user_agent"`
		RequestedAt time.Time `avro:"requested_at"`
		ExpiresAt   time.Time `avro:"expires_at"`
	}
	ip := "192.0.2.1"
	at := time.Date(2026, 11, 23, 18, 30, 0, 0, time.UTC)
	v := reset{UserID: "usr_1", RequestID: "3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b", IPAddress: &ip, RequestedAt: at, ExpiresAt: at.Add(time.Hour)}
	b, err := c.EncodeNative("user.password_reset", v)
	if err != nil {
		t.Fatal(err)
	}
	_, js, err := c.DataToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user_id":"usr_1","request_id":"3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b","ip_address":"192.0.2.1","user_agent":null,"requested_at":"2026-11-23T18:30:00.000Z","expires_at":"2026-11-23T19:30:00.000Z"}`
	if string(js) != want {
		t.Errorf("got %s\nwant %s", js, want)
	}
	// Same bytes as EncodeJSON of that JSON.
	if b2, err := c.EncodeJSON("user.password_reset", js); err != nil || string(b2) != string(b) {
		t.Errorf("EncodeJSON of the output: %x, %v; EncodeNative: %x", b2, err, b)
	}

	v.RequestID = "not-a-uuid"
	if _, err := c.EncodeNative("user.password_reset", v); err == nil || !strings.Contains(err.Error(), "uuid") {
		t.Errorf("invalid uuid: %v", err)
	}
	if _, err := c.EncodeNative("user.password_reset", map[string]any{"user_id": "x"}); err == nil {
		t.Error("missing fields accepted")
	}
	if _, err := c.EncodeNative("nope.nope", v); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("unknown type: %v", err)
	}

	// map[string]any works too.
	m := map[string]any{"organization_id": "org_1", "deleted_by": "usr_1", "member_count": 3, "deleted_at": at}
	b, err = c.EncodeNative("organization.deleted", m)
	if err != nil {
		t.Fatal(err)
	}
	if _, js, _ := c.DataToJSON(b); string(js) != `{"organization_id":"org_1","deleted_by":"usr_1","member_count":3,"data_retention_days":30,"deleted_at":"2026-11-23T18:30:00.000Z"}` {
		t.Errorf("from map: %s", js)
	}
}

type endpointRec struct {
	ID           string    `avro:"id"`
	TenantID     string    `avro:"tenant_id"`
	URL          string    `avro:"url"`
	EventTypes   []string  `avro:"event_types"`
	Secrets      []string  `avro:"secrets"`
	Status       string    `avro:"status"`
	StatusReason string    `avro:"status_reason"`
	Partitions   int32     `avro:"partitions"`
	Ordered      bool      `avro:"ordered"`
	RateLimit    float64   `avro:"rate_limit"`
	MaxInFlight  int32     `avro:"max_in_flight"`
	Description  string    `avro:"description"`
	CreatedAt    time.Time `avro:"created_at"`
	UpdatedAt    time.Time `avro:"updated_at"`
	DeletedAt    *time.Time
}

func TestMarshalUnmarshalInternalRecord(t *testing.T) {
	c := defaultCatalog(t)
	at := time.UnixMilli(1795000000000).UTC()
	in := endpointRec{ID: "ep_1", TenantID: "ten_1", URL: "https://x.example/h", EventTypes: []string{"payment.*"},
		Secrets: []string{"whsec_abc"}, Status: "active", Partitions: 4, Ordered: true, RateLimit: 2.5,
		CreatedAt: at, UpdatedAt: at}
	b, err := c.Marshal(EndpointName, in)
	if err != nil {
		t.Fatal(err)
	}
	fp, _, _ := SplitHeader(b)
	if fp != c.records[EndpointName].current.fingerprint {
		t.Errorf("header fingerprint %x", fp)
	}
	var out endpointRec
	if err := c.Unmarshal(b, EndpointName, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Partitions != 4 || !out.Ordered || out.RateLimit != 2.5 || !out.CreatedAt.Equal(at) || len(out.EventTypes) != 1 {
		t.Errorf("round trip: %+v", out)
	}

	if _, err := c.Marshal("hookstream.Nope", in); err == nil {
		t.Error("Marshal of unknown record")
	}
	if err := c.Unmarshal(b, "hookstream.Nope", &out); err == nil {
		t.Error("Unmarshal of unknown record")
	}
	env, _ := c.EncodeEnvelope(&Envelope{ID: "e", Type: "payment.succeeded", Data: encodeExample(t, c, "payment.succeeded")})
	if err := c.Unmarshal(env, EndpointName, &out); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("envelope bytes as endpoint: %v, want ErrUnknownSchema", err)
	}
	if err := c.Unmarshal(b[:len(b)-3], EndpointName, &out); err == nil {
		t.Error("truncated endpoint decoded")
	}
	if err := c.Unmarshal(append(b, 0), EndpointName, &out); err == nil {
		t.Error("endpoint with trailing byte decoded")
	}
}

// TestOlderInternalRecordVersion: an endpoint written before fields were
// added decodes with the current schema's defaults.
func TestOlderInternalRecordVersion(t *testing.T) {
	m := schemaTree(t)
	old := `{"type":"record","name":"Endpoint","namespace":"hookstream","fields":[
		{"name":"id","type":"string"},{"name":"tenant_id","type":"string"},{"name":"url","type":"string"},
		{"name":"event_types","type":{"type":"array","items":"string"}},{"name":"secrets","type":{"type":"array","items":"string"}},
		{"name":"created_at","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"updated_at","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"legacy","type":"int","default":0}]}`
	m["endpoint.v1.avsc"] = &fstest.MapFile{Data: []byte(old)}
	c, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	oldSchema := avro.MustParse(old)
	body, err := avro.Marshal(oldSchema, map[string]any{"id": "ep_old", "tenant_id": "t", "url": "u",
		"event_types": []any{"*"}, "secrets": []any{}, "created_at": time.UnixMilli(5).UTC(), "updated_at": time.UnixMilli(6).UTC(), "legacy": 9})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := SchemaFingerprint([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	out := endpointRec{Status: "garbage", Partitions: 99}
	if err := c.Unmarshal(append(AppendHeader(nil, fp), body...), EndpointName, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "ep_old" || out.Status != "active" || out.Partitions != 1 || out.UpdatedAt.UnixMilli() != 6 {
		t.Errorf("old endpoint: %+v", out)
	}
}

func TestCatalogConcurrentUse(t *testing.T) {
	c := defaultCatalog(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			types := c.Types()
			typ := types[i%len(types)]
			var buf []byte
			for range 50 {
				b, err := c.EncodeJSON(typ, example(t, typ))
				if err != nil {
					t.Error(err)
					return
				}
				if buf, err = c.AppendDataJSON(buf[:0], b); err != nil {
					t.Error(err)
					return
				}
				env, err := c.EncodeEnvelope(&Envelope{ID: "evt", Type: typ, TenantID: "t", Data: b})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := c.DecodeEnvelope(env); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
