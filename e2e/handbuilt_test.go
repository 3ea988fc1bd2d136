package e2e

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafkatest"
)

// The Parsing Canonical Forms of the two schemas the hand-built record uses,
// written out by hand from the Avro specification (only name, type, fields;
// full names; logicalType stripped, so timestamp-millis is "long").
const (
	envelopePCF    = `{"name":"hookstream.Envelope","type":"record","fields":[{"name":"id","type":"string"},{"name":"type","type":"string"},{"name":"tenant_id","type":"string"},{"name":"occurred_at","type":"long"},{"name":"data","type":"bytes"},{"name":"previous_data","type":["null","bytes"]}]}`
	userDeletedPCF = `{"name":"hookstream.events.user.UserDeleted","type":"record","fields":[{"name":"user_id","type":"string"},{"name":"email","type":"string"},{"name":"deleted_by","type":["null","string"]},{"name":"reason","type":["null","string"]},{"name":"deleted_at","type":"long"}]}`
)

// rabin is CRC-64-AVRO exactly as the Avro specification's reference code
// computes it ("Schema Fingerprints"), independent of pkg/codec.
func rabin(buf []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for j := 0; j < 8; j++ {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, b := range buf {
		fp = (fp >> 8) ^ table[(byte(fp)^b)&0xff]
	}
	return fp
}

// Avro binary encoding, by the spec: longs are zig-zag varints, strings and
// bytes are a long length then the bytes, a union is the branch index (a
// long) then the value.
func avroLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }
func avroString(b []byte, s string) []byte {
	return append(avroLong(b, int64(len(s))), s...)
}

// singleObject prefixes body with the single-object header: C3 01 then the
// fingerprint of the writer schema, little-endian.
func singleObject(pcf string, body []byte) []byte {
	b := []byte{0xC3, 0x01}
	b = binary.LittleEndian.AppendUint64(b, rabin([]byte(pcf)))
	return append(b, body...)
}

// handEnvelope encodes a hookstream.Envelope by hand, previous_data null.
func handEnvelope(id, typ, tenant string, at time.Time, dataSOE []byte) []byte {
	var env []byte
	env = avroString(env, id)
	env = avroString(env, typ)
	env = avroString(env, tenant)
	env = avroLong(env, at.UnixMilli())
	env = append(avroLong(env, int64(len(dataSOE))), dataSOE...) // data: bytes
	env = avroLong(env, 0)                                       // previous_data: union branch 0, null
	return singleObject(envelopePCF, env)
}

func testHandBuilt(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	// Our schema files must canonicalise to the hand-written forms.
	for typ, pcf := range map[string]string{"user.deleted": userDeletedPCF} {
		s, ok := e.Catalog.Version(typ, 1)
		if !ok || s.Fingerprint != rabin([]byte(pcf)) {
			t.Fatalf("catalog fingerprint of %s v1 does not match the spec-computed one", typ)
		}
	}
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/hand"), "user.deleted")
	recv.trust("/hand", ep)
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())

	deletedAt := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var data []byte
	data = avroString(data, "usr_42")
	data = avroString(data, "ada@example.com")
	data = avroLong(data, 1) // deleted_by: union branch 1 (string)
	data = avroString(data, "admin_7")
	data = avroLong(data, 0) // reason: union branch 0 (null)
	data = avroLong(data, deletedAt.UnixMilli())

	const id = "evt_handbuilt0000000000000001"
	value := handEnvelope(id, "user.deleted", "acme", deletedAt, singleObject(userDeletedPCF, data))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plain := cluster.Client(t) // a plain client: no Hookstream code on the writing side
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: e.Kafka.Topics().Events(), Key: []byte("acme"), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the hand-built event", func() bool { return len(recv.deliveries("/hand")) > 0 })
	d := recv.deliveries("/hand")[0]
	if d.ID != id || d.Body["type"] != "user.deleted" || d.Body["tenant_id"] != "acme" || d.Body["timestamp"] != "2026-11-23T12:00:00.000Z" {
		t.Fatalf("envelope fields: %+v", d)
	}
	data2, _ := d.Body["data"].(map[string]any)
	want := map[string]any{"user_id": "usr_42", "email": "ada@example.com", "deleted_by": "admin_7", "reason": nil, "deleted_at": "2026-11-23T12:00:00.000Z"}
	for k, v := range want {
		if data2[k] != v {
			t.Errorf("data.%s = %#v, want %#v", k, data2[k], v)
		}
	}
	if len(data2) != len(want) {
		t.Errorf("data has fields %v, want exactly %v", data2, want)
	}
}
