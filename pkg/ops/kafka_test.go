package ops

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
)

// TestWithKafka runs the parts of ops that need a broker and are not
// covered through the hookstream command's tests, on kfake or real Kafka
// (HOOKSTREAM_TEST_BROKER=kafka).
func TestWithKafka(t *testing.T) {
	c := kafkatest.Start(t)
	t.Run("ScanEndsAtTransactionMarkers", func(t *testing.T) { t.Parallel(); testScanTransactions(t, newTestEnv(t, c)) })
	t.Run("ConcurrentRedrivesSendEachLetterOnce", func(t *testing.T) { t.Parallel(); testRedriveFencing(t, newTestEnv(t, c)) })
	t.Run("ListKeepsTheNewest", func(t *testing.T) { t.Parallel(); testListLimit(t, newTestEnv(t, c)) })
}

type testEnv struct {
	kcfg  kafka.Config
	cat   *codec.Catalog
	cl    *kgo.Client
	reg   *registry.Registry
	admin *registry.Admin
	c     *kafkatest.Cluster
}

func newTestEnv(t *testing.T, c *kafkatest.Cluster) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("opspkg%d", rand.Uint32())
	kcfg := kafka.Config{Brokers: c.Addrs, Prefix: prefix, ClientID: prefix}
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := kcfg.EnsureTopics(ctx, kadm.NewClient(cl), kcfg.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, kcfg, cat, registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return &testEnv{kcfg: kcfg, cat: cat, cl: cl, reg: reg, admin: registry.NewAdmin(kcfg, cl, cat, reg), c: c}
}

func (e *testEnv) txn(t *testing.T, commit bool, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(e.kcfg.ClientOpts("test-txn", kgo.TransactionalID(e.kcfg.Prefix+"-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// A topic whose last offsets are transaction markers, one of an aborted
// transaction, is read to its end, without the aborted records.
func testScanTransactions(t *testing.T, e *testEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := e.kcfg.Prefix + ".scan"
	if err := e.kcfg.EnsureTopics(ctx, kadm.NewClient(e.cl), kafka.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	rec := func(p int32, v string) *kgo.Record { return &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)} }
	if err := e.cl.ProduceSync(ctx, rec(0, "plain")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.txn(t, true, rec(0, "c1"), rec(1, "c2"))
	e.txn(t, false, rec(0, "aborted"), rec(1, "aborted"))

	o := New(e.kcfg, e.cat, e.reg)
	adm := kadm.NewClient(e.cl)
	spans, err := wholeTopic(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32][]string{} // partitions interleave; within one, offset order
	if err := o.scan(ctx, topic, spans, func(r *kgo.Record) error {
		got[r.Partition] = append(got[r.Partition], string(r.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0], []string{"plain", "c1"}) || !slices.Equal(got[1], []string{"c2"}) || len(got) != 2 {
		t.Errorf("scan read %v, want 0:[plain c1] 1:[c2]", got)
	}
	// Empty spans end at once.
	if err := o.scan(ctx, topic, map[int32]span{0: {3, 3}}, func(*kgo.Record) error { t.Error("record from an empty span"); return nil }); err != nil {
		t.Fatal(err)
	}
}

// Two redrives at once: the second fences the first, which fails at its
// next transaction; every letter reaches its endpoint exactly once.
func testRedriveFencing(t *testing.T, e *testEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ep, err := e.admin.Create(ctx, registry.Endpoint{TenantID: "acme", URL: "http://127.0.0.1:1/x", EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	const letters = 6
	var recs []*kgo.Record
	for i := range letters {
		env, err := e.cat.EncodeEnvelope(&codec.Envelope{ID: fmt.Sprintf("evt_%d", i), Type: "endpoint.disabled", TenantID: "acme",
			OccurredAt: time.Now().UTC().Truncate(time.Millisecond), Data: endpointDisabledData(t, e.cat)})
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.cat.Marshal(deliverer.DeadLetterRecordName, &deliverer.DeadLetter{Envelope: env, EventID: fmt.Sprintf("evt_%d", i),
			TenantID: "acme", EndpointID: ep.ID, Reason: deliverer.ReasonExhausted, DeadAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: e.kcfg.Topics().DLQ(), Partition: int32(i % 3), Key: []byte(ep.ID), Value: v})
	}
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	first := New(e.kcfg, e.cat, e.reg)
	var second *RedriveReport
	var secondErr error
	first.afterBatch = func() {
		if second == nil && secondErr == nil {
			second, secondErr = New(e.kcfg, e.cat, e.reg).Redrive(ctx, RedriveOptions{})
		}
	}
	rep, err := first.Redrive(ctx, RedriveOptions{BatchSize: 1})
	if err == nil || !strings.Contains(err.Error(), "another redrive started") {
		t.Errorf("the fenced redrive returned %v; want 'another redrive started'", err)
	}
	if secondErr != nil {
		t.Fatalf("second redrive: %v", secondErr)
	}
	if rep.Redriven != 1 || second.Redriven != letters-1 || second.AlreadyRedriven != 1 {
		t.Errorf("first redrove %d, second %d (already %d); want 1, %d (1)", rep.Redriven, second.Redriven, second.AlreadyRedriven, letters-1)
	}
	third, err := New(e.kcfg, e.cat, e.reg).Redrive(ctx, RedriveOptions{})
	if err != nil || third.Redriven != 0 || third.AlreadyRedriven != letters {
		t.Errorf("third redrive: %+v, %v; want nothing redriven, %d already", third, err, letters)
	}

	// The endpoint topic holds each letter once.
	o := New(e.kcfg, e.cat, e.reg)
	topic := e.kcfg.Topics().Endpoint(ep.ID)
	spans, err := wholeTopic(ctx, kadm.NewClient(e.cl), topic)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := o.scan(ctx, topic, spans, func(r *kgo.Record) error {
		env, err := e.cat.DecodeEnvelope(r.Value)
		if err != nil {
			return err
		}
		seen[env.ID]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != letters {
		t.Errorf("endpoint topic has %d distinct events, want %d: %v", len(seen), letters, seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s redriven %d times", id, n)
		}
	}
}

func endpointDisabledData(t *testing.T, cat *codec.Catalog) []byte {
	t.Helper()
	b, err := cat.EncodeJSON("endpoint.disabled", []byte(`{"endpoint_id":"ep_x","tenant_id":"acme","url":"http://x","reason":"r","failing_since":"2026-11-23T18:00:00.000Z","disabled_at":"2026-11-23T18:00:00.000Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Listing a large dead-letter topic with a limit keeps the newest letters
// by dead_at, whatever partition and offset order they come in.
func testListLimit(t *testing.T, e *testEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, limit = 3000, 5
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	var recs []*kgo.Record
	for _, i := range rand.Perm(n) {
		v, err := e.cat.Marshal(deliverer.DeadLetterRecordName, &deliverer.DeadLetter{EventID: fmt.Sprintf("evt_%04d", i),
			EndpointID: "ep_x", Reason: deliverer.ReasonRejected, DeadAt: base.Add(time.Duration(i) * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: e.kcfg.Topics().DLQ(), Partition: int32(i % 3), Key: []byte("ep_x"), Value: v})
	}
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list, err := New(e.kcfg, e.cat, e.reg).ListDeadLetters(ctx, DeadLetterFilter{EndpointID: "ep_x"}, limit)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range list.Letters {
		ids = append(ids, l.EventID)
	}
	want := []string{"evt_2995", "evt_2996", "evt_2997", "evt_2998", "evt_2999"}
	if !slices.Equal(ids, want) || list.Matched != n || list.Scanned != n {
		t.Errorf("got %v of %d matched, %d scanned; want %v of %d", ids, list.Matched, list.Scanned, want, n)
	}
}
