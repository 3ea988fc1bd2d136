package codec

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Envelope is the record on the events topic and on the endpoint topics
// (schema hookstream.Envelope): the event's identity and metadata around
// its data, which stays Avro (Single Object Encoding of the event type's
// record) so that routing never has to decode it.
type Envelope struct {
	ID           string    // evt_ followed by a sortable unique id
	Type         string    // event type, e.g. payment.succeeded
	TenantID     string    // tenant the event belongs to
	OccurredAt   time.Time // millisecond precision, UTC
	Data         []byte    // Single Object Encoding of the event type's record
	PreviousData []byte    // for *.updated events, the prior state; nil = none
}

// envelopeRecord is Envelope as hamba sees it, used for envelope versions
// the hand-written codec does not know.
type envelopeRecord struct {
	ID           string    `avro:"id"`
	Type         string    `avro:"type"`
	TenantID     string    `avro:"tenant_id"`
	OccurredAt   time.Time `avro:"occurred_at"`
	Data         []byte    `avro:"data"`
	PreviousData []byte    `avro:"previous_data"`
}

// isFastEnvelope reports whether the envelope schema is exactly the one the
// hand-written codec below reads and writes.
func isFastEnvelope(n *node) bool {
	want := []struct {
		name string
		kind kind
	}{
		{"id", kindString}, {"type", kindString}, {"tenant_id", kindString},
		{"occurred_at", kindLong}, {"data", kindBytes}, {"previous_data", kindUnion},
	}
	if len(n.fields) != len(want) {
		return false
	}
	for i, w := range want {
		if f := n.fields[i]; f.name != w.name || f.typ.kind != w.kind {
			return false
		}
	}
	prev := n.fields[5].typ
	return n.fields[3].typ.logical == logicalTimestampMillis &&
		prev.optional >= 0 && prev.branches[prev.optional].kind == kindBytes
}

// EncodeEnvelope encodes e with the current envelope schema as Single
// Object Encoding. It checks (cheaply, see CheckData) that Data and
// PreviousData are data of e.Type.
func (c *Catalog) EncodeEnvelope(e *Envelope) ([]byte, error) {
	if err := c.CheckData(e.Type, e.Data); err != nil {
		return nil, fmt.Errorf("codec: encode envelope %s: data: %w", e.ID, err)
	}
	if e.PreviousData != nil {
		if err := c.CheckData(e.Type, e.PreviousData); err != nil {
			return nil, fmt.Errorf("codec: encode envelope %s: previous_data: %w", e.ID, err)
		}
	}
	if !c.envelopeFast {
		return c.Marshal(EnvelopeName, &envelopeRecord{
			ID: e.ID, Type: e.Type, TenantID: e.TenantID, OccurredAt: e.OccurredAt,
			Data: e.Data, PreviousData: e.PreviousData,
		})
	}
	size := HeaderLen + len(e.ID) + len(e.Type) + len(e.TenantID) + len(e.Data) + len(e.PreviousData) +
		7*binary.MaxVarintLen64
	out := make([]byte, 0, size)
	out = AppendHeader(out, c.envelope.current.fingerprint)
	out = appendString(out, e.ID)
	out = appendString(out, e.Type)
	out = appendString(out, e.TenantID)
	out = appendLong(out, e.OccurredAt.UnixMilli())
	out = appendBytes(out, e.Data)
	prev := c.envelope.current.node.fields[5].typ
	if e.PreviousData == nil {
		return appendLong(out, int64(prev.nullIndex)), nil
	}
	out = appendLong(out, int64(prev.optional))
	return appendBytes(out, e.PreviousData), nil
}

// DecodeEnvelope decodes an envelope written with any known version of the
// envelope schema. Data and PreviousData are copies, not views of b.
func (c *Catalog) DecodeEnvelope(b []byte) (*Envelope, error) {
	fp, body, err := SplitHeader(b)
	if err != nil {
		return nil, fmt.Errorf("codec: decode envelope: %w", err)
	}
	if fp == c.envelope.current.fingerprint && c.envelopeFast {
		e, err := c.decodeEnvelopeFast(body)
		if err != nil {
			return nil, fmt.Errorf("codec: decode envelope: %w", err)
		}
		return e, nil
	}
	rv, ok := c.envelope.versions[fp]
	if !ok {
		return nil, fmt.Errorf("codec: decode envelope: %w", unknownSchema(fp))
	}
	// Walk the body first: it must be exactly one well-formed record, and
	// hamba then never sees lengths the input cannot back.
	if err := checkBody(rv.node, body); err != nil {
		return nil, fmt.Errorf("codec: decode envelope (%s): %w", rv.file, err)
	}
	var rec envelopeRecord
	if err := c.api.Unmarshal(rv.resolved, body, &rec); err != nil {
		return nil, fmt.Errorf("codec: decode envelope (%s): %w", rv.file, err)
	}
	return &Envelope{
		ID: rec.ID, Type: rec.Type, TenantID: rec.TenantID, OccurredAt: rec.OccurredAt.UTC(),
		Data: rec.Data, PreviousData: rec.PreviousData,
	}, nil
}

func (c *Catalog) decodeEnvelopeFast(body []byte) (*Envelope, error) {
	r := reader{b: body}
	id, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	typ, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	tenant, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("tenant_id: %w", err)
	}
	ms, err := r.long()
	if err != nil {
		return nil, fmt.Errorf("occurred_at: %w", err)
	}
	data, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	prevType := c.envelope.current.node.fields[5].typ
	branch, err := r.long()
	if err != nil {
		return nil, fmt.Errorf("previous_data: %w", err)
	}
	var prev []byte
	switch branch {
	case int64(prevType.nullIndex):
	case int64(prevType.optional):
		if prev, err = r.bytes(); err != nil {
			return nil, fmt.Errorf("previous_data: %w", err)
		}
	default:
		return nil, fmt.Errorf("previous_data: union index %d out of range", branch)
	}
	if r.pos != len(body) {
		return nil, fmt.Errorf("%d trailing bytes", len(body)-r.pos)
	}

	e := &Envelope{OccurredAt: time.UnixMilli(ms).UTC()}
	// One allocation for both strings, none for a known event type.
	var scratch [128]byte
	s := string(append(append(scratch[:0], id...), tenant...))
	e.ID, e.TenantID = s[:len(id)], s[len(id):]
	if vs, ok := c.events[string(typ)]; ok {
		e.Type = vs[0].Type
	} else {
		e.Type = string(typ)
	}
	// One allocation for both byte slices.
	buf := make([]byte, len(data)+len(prev))
	copy(buf, data)
	e.Data = buf[:len(data):len(data)]
	if prev != nil {
		copy(buf[len(data):], prev)
		e.PreviousData = buf[len(data):]
	}
	return e, nil
}
