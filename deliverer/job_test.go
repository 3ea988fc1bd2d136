package deliverer

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

func headerMap(hs []kgo.RecordHeader) map[string][]string {
	m := map[string][]string{}
	for _, h := range hs {
		m[h.Key] = append(m[h.Key], string(h.Value))
	}
	return m
}

func TestNewJobFromEndpointTopic(t *testing.T) {
	rec := &kgo.Record{
		Topic: "webhooks.endpoint.ep_1", Partition: 2, Offset: 9,
		Key: []byte("order-17"), Value: []byte("envelope"),
		Headers: []kgo.RecordHeader{hdr("hookstream-event-id", "evt_1"), hdr("traceparent", "00-abc")},
	}
	j := newJob(rec, "ep_1")
	if j.rec != rec || j.endpointID != "ep_1" || j.key != "order-17" || j.attempts != 0 || j.budget != 0 ||
		!j.firstAt.IsZero() || !j.due.IsZero() || j.lastStatus != 0 || j.lastErr != "" {
		t.Errorf("newJob = %+v, want a first attempt for ep_1 keyed order-17", j)
	}
}

func TestRetryRecordRoundTrip(t *testing.T) {
	first := time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	due := first.Add(5*time.Minute + 987_654_321)
	orig := &kgo.Record{
		Topic: "webhooks.retry.5s", Key: []byte("ep_1"), Value: []byte("envelope bytes"),
		Headers: []kgo.RecordHeader{
			hdr("hookstream-event-id", "evt_1"),
			hdr("traceparent", "00-abc"),
			hdr(HeaderRetryEndpoint, "ep_1"),
			hdr(HeaderRetryAttempts, "1"),
			hdr(HeaderRetryBudget, "1"),
			hdr(HeaderRetryFirst, strconv.FormatInt(first.UnixMilli(), 10)),
			hdr(HeaderRetryDue, "1"),
			hdr(HeaderRetryLastStatus, "500"),
			hdr(HeaderRetryLastError, "HTTP 500 Internal Server Error"),
			hdr("x-custom", "kept"),
		},
	}
	j := newJob(orig, "") // a retry tier: the endpoint comes from the headers
	if j.endpointID != "ep_1" || j.attempts != 1 || j.budget != 1 || !j.firstAt.Equal(first.Truncate(time.Millisecond)) ||
		!j.due.Equal(time.UnixMilli(1)) || j.lastStatus != 500 || j.lastErr != "HTTP 500 Internal Server Error" {
		t.Fatalf("newJob from a retry record = %+v", j)
	}

	// A second failed attempt.
	j.attempts, j.budget, j.lastStatus, j.lastErr = 2, 2, 0, "dial tcp: connection refused"
	out := j.retryRecord("webhooks.retry.5m", due)
	if out.Topic != "webhooks.retry.5m" || string(out.Key) != "ep_1" || string(out.Value) != "envelope bytes" {
		t.Errorf("retryRecord: topic %s key %q value %q", out.Topic, out.Key, out.Value)
	}
	hm := headerMap(out.Headers)
	for k, want := range map[string]string{
		"hookstream-event-id": "evt_1", "traceparent": "00-abc", "x-custom": "kept",
		HeaderRetryEndpoint: "ep_1", HeaderRetryAttempts: "2", HeaderRetryBudget: "2",
		HeaderRetryFirst: strconv.FormatInt(first.UnixMilli(), 10), HeaderRetryDue: strconv.FormatInt(due.UnixMilli(), 10),
		HeaderRetryLastStatus: "0", HeaderRetryLastError: "dial tcp: connection refused",
	} {
		if got := hm[k]; !slices.Equal(got, []string{want}) {
			t.Errorf("header %s = %q, want exactly [%q] (old retry headers replaced, not duplicated)", k, got, want)
		}
	}
	if len(out.Headers) != 10 {
		t.Errorf("retryRecord has %d headers, want 10: %v", len(out.Headers), hm)
	}
	// The original record is untouched.
	if len(orig.Headers) != 10 || string(orig.Headers[3].Value) != "1" {
		t.Errorf("retryRecord modified the original headers: %v", headerMap(orig.Headers))
	}

	back := newJob(out, "")
	if back.endpointID != "ep_1" || back.attempts != 2 || back.budget != 2 || !back.firstAt.Equal(j.firstAt) ||
		!back.due.Equal(due.Truncate(time.Millisecond)) || back.lastStatus != 0 || back.lastErr != j.lastErr {
		t.Errorf("newJob(retryRecord(j)) = %+v, want the fields of %+v", back, j)
	}
}

// Headers other than the retry ones (provenance such as
// hookstream-redriven-from, the event id, the publisher's own) are carried
// into the retry tier unchanged.
func TestRetryRecordKeepsOtherHeaders(t *testing.T) {
	rec := &kgo.Record{Key: []byte("k"), Headers: []kgo.RecordHeader{hdr("hookstream-error", "x"), hdr("hookstream-event-id", "evt_1"), hdr("Hookstream-Case", "y")}}
	j := newJob(rec, "ep_1")
	j.firstAt = time.UnixMilli(1000)
	hm := headerMap(j.retryRecord("t", time.UnixMilli(2000)).Headers)
	if got := hm["hookstream-error"]; !slices.Equal(got, []string{"x"}) {
		t.Errorf("hookstream-error = %q, want it carried", got)
	}
	if got := hm["hookstream-event-id"]; !slices.Equal(got, []string{"evt_1"}) {
		t.Errorf("hookstream-event-id = %q", got)
	}
	if got := hm["Hookstream-Case"]; !slices.Equal(got, []string{"y"}) { // the prefix match is case-sensitive
		t.Errorf("Hookstream-Case = %q", got)
	}
}

func TestNewJobIgnoresMalformedHeaders(t *testing.T) {
	rec := &kgo.Record{Headers: []kgo.RecordHeader{
		hdr(HeaderRetryEndpoint, "ep_2"),
		hdr(HeaderRetryAttempts, "three"),
		hdr(HeaderRetryBudget, ""),
		hdr(HeaderRetryFirst, "yesterday"),
		hdr(HeaderRetryDue, "1e3"),
		hdr(HeaderRetryLastStatus, "5xx"),
	}}
	j := newJob(rec, "")
	if j.endpointID != "ep_2" || j.attempts != 0 || j.budget != 0 || !j.firstAt.IsZero() || !j.due.IsZero() || j.lastStatus != 0 {
		t.Errorf("newJob with malformed headers = %+v, want zero values", j)
	}
}

// A record on an endpoint topic carries the headers its producer set, and
// the router copies them unchanged. newJob reads the retry headers on
// endpoint topics too, so an event published with a hookstream-endpoint
// header is delivered to (and signed for) that other endpoint, and one
// with hookstream-budget / hookstream-attempts / hookstream-due starts with
// a spent budget or a delay.
func TestNewJobOnEndpointTopicIgnoresRetryHeaders(t *testing.T) {
	rec := &kgo.Record{Key: []byte("k"), Headers: []kgo.RecordHeader{
		hdr(HeaderRetryEndpoint, "ep_other_tenant"),
		hdr(HeaderRetryAttempts, "1000"),
		hdr(HeaderRetryBudget, "1000"),
		hdr(HeaderRetryDue, strconv.FormatInt(time.Now().Add(24*time.Hour).UnixMilli(), 10)),
	}}
	j := newJob(rec, "ep_1")
	if j.endpointID != "ep_1" || j.attempts != 0 || j.budget != 0 || !j.due.IsZero() {
		t.Errorf("newJob on an endpoint topic = %+v, want a first attempt for ep_1", j)
	}
}

// The event's key rides along in a header: retry tiers key their records by
// endpoint, and a dead letter (keyed by endpoint too) must still tell a
// redrive which key to write the event back under. A publisher's own
// header of that name on an endpoint-topic record is replaced, not trusted.
func TestRetryRecordCarriesEventKey(t *testing.T) {
	rec := &kgo.Record{Topic: "webhooks.endpoint.ep_1", Key: []byte("order-17"), Value: []byte("envelope"),
		Headers: []kgo.RecordHeader{hdr(HeaderEventKey, "forged")}}
	j := newJob(rec, "ep_1")
	j.firstAt = time.UnixMilli(1000)
	tier := j.retryRecord("webhooks.retry.5s", time.UnixMilli(2000))
	if string(tier.Key) != "ep_1" {
		t.Errorf("retry record key %q, want the endpoint id", tier.Key)
	}
	if got := headerMap(tier.Headers)[HeaderEventKey]; !slices.Equal(got, []string{"order-17"}) {
		t.Fatalf("%s = %q, want exactly [order-17]", HeaderEventKey, got)
	}
	back := newJob(tier, "")
	if back.eventKey != "order-17" || back.key != "ep_1" {
		t.Fatalf("newJob(tier record): eventKey %q, key %q; want order-17 and ep_1", back.eventKey, back.key)
	}
	again := headerMap(back.retryRecord("webhooks.retry.5m", time.UnixMilli(3000)).Headers)[HeaderEventKey]
	if !slices.Equal(again, []string{"order-17"}) {
		t.Errorf("second tier: %s = %q, want exactly [order-17]", HeaderEventKey, again)
	}

	// An event without a key gets no header (a redrive falls back to its tenant).
	nokey := newJob(&kgo.Record{Topic: "webhooks.endpoint.ep_1"}, "ep_1")
	nokey.firstAt = time.UnixMilli(1000)
	if got := headerMap(nokey.retryRecord("t", time.UnixMilli(2000)).Headers)[HeaderEventKey]; got != nil {
		t.Errorf("keyless event: %s = %q, want none", HeaderEventKey, got)
	}
}
