package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

func sampleEnvelope(t testing.TB, c *Catalog) *Envelope {
	t.Helper()
	data := encodeExample(t, c, "resource.updated")
	return &Envelope{
		ID:           "evt_01JD5Z8V1X3Z5B7D9F1H3K5M7P",
		Type:         "resource.updated",
		TenantID:     "ten_01JD5N0A1B2C3D4E5F6G7H8J9K",
		OccurredAt:   time.Date(2026, 11, 23, 18, 21, 7, 412_000_000, time.UTC),
		Data:         data,
		PreviousData: data,
	}
}

func envelopesEqual(t *testing.T, got, want *Envelope) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.TenantID != want.TenantID ||
		!got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != time.UTC ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.PreviousData, want.PreviousData) ||
		(got.PreviousData == nil) != (want.PreviousData == nil) {
		t.Errorf("envelope\n got %+v\nwant %+v", got, want)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	c := defaultCatalog(t)
	if !c.envelopeFast {
		t.Fatal("envelope.avsc no longer matches the hand-written envelope codec")
	}
	e := sampleEnvelope(t, c)
	for _, prev := range [][]byte{nil, e.Data} {
		e.PreviousData = prev
		b, err := c.EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		fp, _, _ := SplitHeader(b)
		if fp != c.envelope.current.fingerprint {
			t.Errorf("fingerprint %x", fp)
		}
		got, err := c.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		envelopesEqual(t, got, e)

		// hamba reads the same bytes the same way.
		var rec envelopeRecord
		if err := c.Unmarshal(b, EnvelopeName, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.ID != e.ID || rec.Type != e.Type || !rec.OccurredAt.Equal(e.OccurredAt) ||
			!bytes.Equal(rec.Data, e.Data) || !bytes.Equal(rec.PreviousData, prev) {
			t.Errorf("hamba reads %+v", rec)
		}
		// And writes the same bytes.
		body, err := avro.Marshal(c.envelope.current.schema, &rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, b[HeaderLen:]) {
			t.Errorf("hamba encodes\n%x\nthe codec\n%x", body, b[HeaderLen:])
		}

		// Decoded slices are copies: the input can be reused.
		for i := range b {
			b[i] = 0
		}
		envelopesEqual(t, got, e)
	}
}

func TestEnvelopeEdgeCases(t *testing.T) {
	c := defaultCatalog(t)
	data := encodeExample(t, c, "user.deleted")
	for _, e := range []*Envelope{
		{Type: "user.deleted", Data: data},                                               // empty strings, zero time
		{ID: "é☃\x00", Type: "user.deleted", Data: data, PreviousData: data[:HeaderLen]}, // header-only previous data
		{ID: strings.Repeat("x", 300), TenantID: strings.Repeat("y", 300), Type: "user.deleted", Data: data,
			OccurredAt: time.UnixMilli(-1)},
	} {
		b, err := c.EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		want := *e
		want.OccurredAt = time.UnixMilli(e.OccurredAt.UnixMilli()).UTC()
		envelopesEqual(t, got, &want)
	}
	// Sub-millisecond precision is dropped, the zone becomes UTC.
	e := &Envelope{Type: "user.deleted", Data: data, OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6_789_999, time.FixedZone("X", 3600))}
	b, _ := c.EncodeEnvelope(e)
	got, err := c.DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 2, 4, 5, 6_000_000, time.UTC); got.OccurredAt != want {
		t.Errorf("OccurredAt %v, want %v", got.OccurredAt, want)
	}
}

func TestEncodeEnvelopeChecksData(t *testing.T) {
	c := defaultCatalog(t)
	data := encodeExample(t, c, "user.deleted")
	for _, e := range []*Envelope{
		{Type: "user.created", Data: data},
		{Type: "user.deleted", Data: []byte(`{"not":"avro"}`)},
		{Type: "user.deleted", Data: AppendHeader(nil, 99)},
		{Type: "user.deleted", Data: data, PreviousData: []byte{}},
		{Type: "nope.nope", Data: data},
	} {
		if _, err := c.EncodeEnvelope(e); err == nil {
			t.Errorf("EncodeEnvelope(%+v) accepted", e)
		}
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	c := defaultCatalog(t)
	good, err := c.EncodeEnvelope(sampleEnvelope(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DecodeEnvelope(good[:3]); !errors.Is(err, ErrNotSingleObject) {
		t.Errorf("short: %v", err)
	}
	if _, err := c.DecodeEnvelope(append([]byte{0xc3, 0x02}, good[2:]...)); !errors.Is(err, ErrNotSingleObject) {
		t.Errorf("bad magic: %v", err)
	}
	data := encodeExample(t, c, "user.deleted")
	if _, err := c.DecodeEnvelope(data); !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), "envelope") {
		t.Errorf("event data as envelope: %v", err)
	}
	// Every strict prefix of the body is truncated, any extra byte is trailing.
	for n := HeaderLen; n < len(good); n++ {
		if _, err := c.DecodeEnvelope(good[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded", n, len(good))
		}
	}
	if _, err := c.DecodeEnvelope(append(good[:len(good):len(good)], 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
	// previous_data union index out of range.
	e := sampleEnvelope(t, c)
	e.PreviousData = nil
	b, _ := c.EncodeEnvelope(e)
	b[len(b)-1] = 4 // zig-zag 2
	if _, err := c.DecodeEnvelope(b); err == nil || !strings.Contains(err.Error(), "previous_data") {
		t.Errorf("bad union index: %v", err)
	}
	// A length larger than the input.
	b, _ = c.EncodeEnvelope(e)
	b[HeaderLen] = 0x7e // id length 63
	if _, err := c.DecodeEnvelope(b[:HeaderLen+10]); err == nil {
		t.Error("overlong id decoded")
	}
}

// TestEnvelopeOlderVersion: envelopes written before previous_data existed
// still decode.
func TestEnvelopeOlderVersion(t *testing.T) {
	m := schemaTree(t)
	old := `{"type":"record","name":"Envelope","namespace":"hookstream","fields":[
		{"name":"id","type":"string"},{"name":"type","type":"string"},{"name":"tenant_id","type":"string"},
		{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"data","type":"bytes"}]}`
	m["envelope.v1.avsc"] = fsFile(old)
	c, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	data := encodeExample(t, c, "order.paid")
	body, err := avro.Marshal(avro.MustParse(old), map[string]any{
		"id": "evt_old", "type": "order.paid", "tenant_id": "ten", "occurred_at": time.UnixMilli(1700000000000), "data": data})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := SchemaFingerprint([]byte(old))
	got, err := c.DecodeEnvelope(append(AppendHeader(nil, fp), body...))
	if err != nil {
		t.Fatal(err)
	}
	envelopesEqual(t, got, &Envelope{ID: "evt_old", Type: "order.paid", TenantID: "ten", OccurredAt: time.UnixMilli(1700000000000).UTC(), Data: data})
	if _, err := c.DecodeEnvelope(append(AppendHeader(nil, fp), body[:len(body)-1]...)); err == nil {
		t.Error("truncated old envelope decoded")
	}
}

// TestEnvelopeWithoutFastPath: a changed envelope.avsc (a field added with a
// default) is still handled, through hamba, until the fast path learns it.
func TestEnvelopeWithoutFastPath(t *testing.T) {
	m := schemaTree(t)
	m["envelope.avsc"] = fsFile(strings.Replace(string(m["envelope.avsc"].Data),
		`{"name": "previous_data"`, `{"name": "trace_id", "type": "string", "default": ""}, {"name": "previous_data"`, 1))
	c, err := Load(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.envelopeFast {
		t.Fatal("fast path enabled for an envelope it does not know")
	}
	e := sampleEnvelope(t, c)
	for _, prev := range [][]byte{nil, e.Data} {
		e.PreviousData = prev
		b, err := c.EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		envelopesEqual(t, got, e)
	}
	// Envelopes written with the old (now unknown to the catalog) schema
	// are rejected by fingerprint.
	fast, _ := defaultCatalog(t).EncodeEnvelope(e)
	if _, err := c.DecodeEnvelope(fast); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("envelope of another schema: %v", err)
	}
}

func TestDecodeEnvelopeAllocations(t *testing.T) {
	c := defaultCatalog(t)
	e := sampleEnvelope(t, c)
	b, _ := c.EncodeEnvelope(e)
	n := testing.AllocsPerRun(200, func() {
		if _, err := c.DecodeEnvelope(b); err != nil {
			t.Fatal(err)
		}
	})
	// The Envelope, one string for id and tenant, one buffer for both data.
	if n > 3 {
		t.Errorf("DecodeEnvelope allocates %v times, want <= 3", n)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = c.EncodeEnvelope(e) }); n != 1 {
		t.Errorf("EncodeEnvelope allocates %v times, want 1", n)
	}
	_ = n // sampleEnvelope itself allocates; see BenchmarkEncodeEnvelope
}
