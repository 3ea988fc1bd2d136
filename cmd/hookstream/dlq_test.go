package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/ops"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// letter is a dead letter the test wrote, with where it landed.
type letter struct {
	dl        deliverer.DeadLetter
	partition int32
	offset    int64
}

// deadLetter writes a dead letter of endpoint to the given partition of the
// dead-letter topic, as the deliverer would, and returns it.
func (e *opsEnv) deadLetter(endpoint, reason string, partition int32, deadAt time.Time, headers ...kgo.RecordHeader) letter {
	e.t.Helper()
	env, evID := e.envelope()
	dl := deliverer.DeadLetter{
		Envelope: env, EventID: evID, EventType: "payment.succeeded", TenantID: "acme", EndpointID: endpoint,
		EndpointURL: "http://127.0.0.1:1/hook", Attempts: 10, FirstAttemptAt: deadAt.Add(-time.Hour).UTC().Truncate(time.Millisecond),
		LastAttemptAt: deadAt.UTC().Truncate(time.Millisecond), LastStatus: 503, LastError: "HTTP 503 Service Unavailable",
		Reason: reason, DeadAt: deadAt.UTC().Truncate(time.Millisecond),
	}
	val, err := e.cat.Marshal(deliverer.DeadLetterRecordName, &dl)
	if err != nil {
		e.t.Fatal(err)
	}
	rec := &kgo.Record{Topic: e.kcfg.Topics().DLQ(), Partition: partition, Key: []byte(endpoint), Value: val,
		Headers: append([]kgo.RecordHeader{{Key: deliverer.HeaderReason, Value: []byte(reason)}}, headers...)}
	e.produce(rec)
	return letter{dl: dl, partition: partition, offset: rec.Offset}
}

func (e *opsEnv) listLetters(args ...string) []deadLetterJSON {
	e.t.Helper()
	out := e.mustRun(append([]string{"dlq", "list", "--json"}, args...)...)
	var got []deadLetterJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		e.t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	return got
}

// endOffsets sums the end offsets of topic's partitions.
func (e *opsEnv) endOffsets(topic string) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func eventIDs(ls []deadLetterJSON) string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, fmt.Sprintf("%s(%s,redriven=%v)", l.EventID, l.EndpointID, l.Redriven))
	}
	return strings.Join(ids, " ")
}

func testDLQListAndRedrive(t *testing.T, e *opsEnv) {
	a := e.createEndpoint(registry.Endpoint{})
	b := e.createEndpoint(registry.Endpoint{})
	gone := e.createEndpoint(registry.Endpoint{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.admin.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	l1 := e.deadLetter(a.ID, deliverer.ReasonExhausted, 0, base)
	l2 := e.deadLetter(a.ID, deliverer.ReasonRejected, 1, base.Add(time.Minute))
	// l3's event was published under its own key (not the tenant's): the
	// deliverer records it on the letter, and a redrive writes it back under it.
	l3 := e.deadLetter(b.ID, deliverer.ReasonExhausted, 2, base.Add(2*time.Minute), kgo.RecordHeader{Key: deliverer.HeaderEventKey, Value: []byte("order-42")})
	e.deadLetter("ep_unknown", deliverer.ReasonExhausted, 0, base.Add(3*time.Minute))
	l5 := e.deadLetter(gone.ID, deliverer.ReasonRejected, 1, base.Add(4*time.Minute))
	e.produce(&kgo.Record{Topic: e.kcfg.Topics().DLQ(), Partition: 2, Key: []byte(a.ID), Value: []byte("not a dead letter")})

	// list: every letter, oldest first; filters; limit keeps the newest.
	all := e.listLetters()
	if len(all) != 5 || all[0].EventID != l1.dl.EventID || all[4].EventID != l5.dl.EventID {
		t.Fatalf("dlq list: %s; want the 5 letters oldest first", eventIDs(all))
	}
	if all[0].Attempts != 10 || all[0].LastStatus != 503 || all[0].Reason != deliverer.ReasonExhausted || all[0].Partition != 0 || all[0].Offset != l1.offset || all[0].Redriven {
		t.Errorf("dlq list: first letter %+v", all[0])
	}
	if got := e.listLetters("--endpoint", a.ID); len(got) != 2 {
		t.Errorf("--endpoint %s: %s", a.ID, eventIDs(got))
	}
	if got := e.listLetters("--reason", "rejected"); len(got) != 2 || got[0].EventID != l2.dl.EventID {
		t.Errorf("--reason rejected: %s", eventIDs(got))
	}
	if got := e.listLetters("--event-id", l3.dl.EventID); len(got) != 1 || got[0].EndpointID != b.ID || got[0].EventKey != "order-42" {
		t.Errorf("--event-id: %s", eventIDs(got))
	}
	code, out, errOut := e.run("dlq", "list", "--limit", "2")
	if code != 0 || !strings.Contains(out, "DEAD_AT") || !strings.Contains(out, l5.dl.EventID) || strings.Contains(out, l1.dl.EventID) ||
		!strings.Contains(errOut, "newest 2 of 5") || !strings.Contains(errOut, "1 record(s)") {
		t.Errorf("dlq list --limit 2: exit %d\n%s%s", code, out, errOut)
	}

	// A dry run writes nothing.
	out = e.mustRun("dlq", "redrive", "--dry-run")
	if !strings.Contains(out, "would redrive 3 dead letter(s)") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := e.endOffsets(e.kcfg.Topics().Endpoint(a.ID)) + e.endOffsets(e.kcfg.Topics().Endpoint(b.ID)); n != 0 {
		t.Fatalf("dry run wrote %d records to the endpoint topics", n)
	}

	// A filtered redrive sends only what matches.
	out = e.mustRun("dlq", "redrive", "--endpoint", a.ID, "--reason", "exhausted")
	if !strings.Contains(out, "redrove 1 dead letter(s): "+a.ID+" 1") {
		t.Errorf("filtered redrive:\n%s", out)
	}
	recs := e.readTopic(e.kcfg.Topics().Endpoint(a.ID))
	if len(recs) != 1 {
		t.Fatalf("endpoint topic of %s has %d records after the filtered redrive, want 1", a.ID, len(recs))
	}
	r := recs[0]
	if !bytes.Equal(r.Value, l1.dl.Envelope) || string(r.Key) != "acme" || header(r, ops.HeaderEventID) != l1.dl.EventID ||
		header(r, ops.HeaderRedrivenFrom) != fmt.Sprintf("%s/%d/%d", e.kcfg.Topics().DLQ(), l1.partition, l1.offset) {
		t.Errorf("redriven record: key %q, headers %v, value equal: %v", r.Key, r.Headers, bytes.Equal(r.Value, l1.dl.Envelope))
	}

	// An unfiltered one sends the rest once, and reports what it skipped.
	out = e.mustRun("dlq", "redrive")
	for _, want := range []string{
		"redrove 2 dead letter(s): ", a.ID + " 1", b.ID + " 1", "already redriven (not sent again): 1", "skipped: 3",
		"unknown endpoint: 1 (ep_unknown ×1)", "endpoint deleted: 1 (" + gone.ID + " ×1)", "undecodable dead letter: 1 (" + a.ID + " ×1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("redrive output lacks %q:\n%s", want, out)
		}
	}
	if got := len(e.readTopic(e.kcfg.Topics().Endpoint(a.ID))); got != 2 {
		t.Errorf("endpoint topic of %s has %d records, want 2", a.ID, got)
	}
	if got := e.readTopic(e.kcfg.Topics().Endpoint(b.ID)); len(got) != 1 || !bytes.Equal(got[0].Value, l3.dl.Envelope) || string(got[0].Key) != "order-42" {
		t.Errorf("endpoint topic of %s: %d records, want l3's envelope under its event key order-42", b.ID, len(got))
	}

	// A second redrive sends nothing new. (Records are counted, not end
	// offsets: the first redrive's commit markers may still be landing.)
	out = e.mustRun("dlq", "redrive")
	if !strings.Contains(out, "redrove 0 dead letter(s)") || !strings.Contains(out, "already redriven (not sent again): 3") {
		t.Errorf("second redrive:\n%s", out)
	}
	if a2, b2 := len(e.readTopic(e.kcfg.Topics().Endpoint(a.ID))), len(e.readTopic(e.kcfg.Topics().Endpoint(b.ID))); a2 != 2 || b2 != 1 {
		t.Errorf("second redrive wrote to the endpoint topics: %d and %d records, want 2 and 1", a2, b2)
	}

	// list marks what was redriven.
	for _, l := range e.listLetters() {
		want := l.EndpointID == a.ID || l.EndpointID == b.ID
		if l.Redriven != want {
			t.Errorf("letter %s of %s: redriven %v, want %v", l.EventID, l.EndpointID, l.Redriven, want)
		}
	}
}

// testDLQRedriveDelivered: a redriven letter is delivered afresh (attempt
// 1, full schedule) by a running deliverer, with its original webhook-id.
func testDLQRedriveDelivered(t *testing.T, e *opsEnv) {
	secret := mustSecret(t)
	type got struct {
		id, attempt string
		verified    bool
	}
	deliveries := make(chan got, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		deliveries <- got{r.Header.Get("webhook-id"), r.Header.Get("webhook-attempt"), webhook.Verify(secret, r.Header, body) == nil}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	ep := e.createEndpoint(registry.Endpoint{URL: srv.URL + "/hook", Secrets: []string{secret.String()}})
	l := e.deadLetter(ep.ID, deliverer.ReasonExhausted, 1, time.Now())
	e.startDeliverer()
	e.mustRun("dlq", "redrive", "--event-id", l.dl.EventID)
	select {
	case d := <-deliveries:
		if d.id != l.dl.EventID || d.attempt != "1" || !d.verified {
			t.Errorf("delivery: webhook-id %s, attempt %s, verified %v; want %s, 1, true", d.id, d.attempt, d.verified, l.dl.EventID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("redriven letter not delivered within 30s")
	}
}
