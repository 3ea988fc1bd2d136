package deliverer

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers of records in the retry tiers. The value of a retry record is the
// original envelope, unchanged, so webhook-id and body stay the same.
const (
	HeaderRetryEndpoint   = "hookstream-endpoint"      // endpoint id
	HeaderRetryAttempts   = "hookstream-attempts"      // HTTP attempts made so far
	HeaderRetryBudget     = "hookstream-budget"        // attempts counted against the schedule
	HeaderRetryFirst      = "hookstream-first-attempt" // unix ms of the first attempt
	HeaderRetryDue        = "hookstream-due"           // unix ms before which it must not be attempted
	HeaderRetryLastStatus = "hookstream-last-status"   // HTTP status of the last attempt (0 = none)
	HeaderRetryLastError  = "hookstream-last-error"    // last error
	// HeaderEventKey is the event's record key on its endpoint topic (its
	// partition there, and its lane on an ordered endpoint). Retry-tier and
	// dead-letter records are keyed by endpoint, so they carry it here, and
	// a redrive writes the event back under it.
	HeaderEventKey = "hookstream-event-key"
)

var retryHeaders = map[string]bool{
	HeaderRetryEndpoint: true, HeaderRetryAttempts: true, HeaderRetryBudget: true, HeaderRetryFirst: true,
	HeaderRetryDue: true, HeaderRetryLastStatus: true, HeaderRetryLastError: true, HeaderEventKey: true,
}

// job is one record on its way to an endpoint, from an endpoint topic (a
// first attempt) or from a retry tier (a later one).
type job struct {
	rec        *kgo.Record
	endpointID string
	key        string // ordering key (the record key)
	eventKey   string // the event's key on its endpoint topic ("": none known)
	attempts   int    // HTTP attempts made before this run
	budget     int    // attempts that count against the retry schedule
	firstAt    time.Time
	due        time.Time // zero = now
	lastStatus int
	lastErr    string
}

// newJob reads a job from a record of an endpoint topic (endpointID given)
// or of a retry tier (endpointID "": it and the retry state come from the
// headers). Retry headers on an endpoint-topic record are ignored: they came
// from whoever published the event, and must not redirect or delay it.
func newJob(rec *kgo.Record, endpointID string) *job {
	j := &job{rec: rec, endpointID: endpointID, key: string(rec.Key)}
	if endpointID != "" {
		j.eventKey = j.key
		return j
	}
	for _, h := range rec.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderRetryEndpoint:
			j.endpointID = v
		case HeaderRetryAttempts:
			j.attempts, _ = strconv.Atoi(v)
		case HeaderRetryBudget:
			j.budget, _ = strconv.Atoi(v)
		case HeaderRetryFirst:
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				j.firstAt = time.UnixMilli(ms)
			}
		case HeaderRetryDue:
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				j.due = time.UnixMilli(ms)
			}
		case HeaderRetryLastStatus:
			j.lastStatus, _ = strconv.Atoi(v)
		case HeaderRetryLastError:
			j.lastErr = v
		case HeaderEventKey:
			j.eventKey = v
		}
	}
	return j
}

// retryRecord is the record that carries j to topic, due at due. The
// original headers are kept, Hookstream's retry headers replaced.
func (j *job) retryRecord(topic string, due time.Time) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(j.rec.Headers)+8)
	for _, h := range j.rec.Headers {
		if !retryHeaders[h.Key] {
			hs = append(hs, h)
		}
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderRetryEndpoint, j.endpointID)
	add(HeaderRetryAttempts, strconv.Itoa(j.attempts))
	add(HeaderRetryBudget, strconv.Itoa(j.budget))
	add(HeaderRetryFirst, strconv.FormatInt(j.firstAt.UnixMilli(), 10))
	add(HeaderRetryDue, strconv.FormatInt(due.UnixMilli(), 10))
	add(HeaderRetryLastStatus, strconv.Itoa(j.lastStatus))
	add(HeaderRetryLastError, j.lastErr)
	if j.eventKey != "" {
		add(HeaderEventKey, j.eventKey)
	}
	return &kgo.Record{Topic: topic, Key: []byte(j.endpointID), Value: j.rec.Value, Headers: hs}
}
