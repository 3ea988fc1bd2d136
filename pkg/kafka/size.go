package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// MaxEventBytes is the largest event record Hookstream carries, counted as
// RecordBytes counts it. The producer refuses a larger event and the router
// quarantines one that another publisher wrote, without its value: every
// copy of it (endpoint topic, retry tier, dead letter) would fail to write
// for good, and a write that keeps failing holds back the other events of
// its batch.
//
// The limit sits below franz-go's default batch limit (1,000,012 bytes)
// and Kafka's default message.max.bytes (1,048,588), leaving room for what
// the deliverer adds to a retry-tier record or a dead letter (headers, the
// last error, up to 1 KiB of the endpoint's response).
const MaxEventBytes = 900_000

// RecordBytes is r's size as franz-go counts it against a batch's limit:
// the key, the value and every header's key and value, uncompressed.
func RecordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
