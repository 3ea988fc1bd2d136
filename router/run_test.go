package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/metrics"
	publisher "github.com/hookstream/hookstream/producer"
)

// Under either guarantee a router that is stopped and started again fans
// every event out exactly once (the at-least-once router commits what it
// wrote when it stops) and commits the whole events topic.
func TestRunFansOutOnceAcrossARestart(t *testing.T) {
	underEachGuarantee(t, func(t *testing.T, g Guarantee, f *fixture, ctx context.Context) {
		adm := f.adm

		want := map[string]map[string]bool{} // endpoint topic -> event ids
		publish := func(n int) {
			t.Helper()
			evs := make([]publisher.Event, n)
			for i := range evs {
				typ := []string{"payment.succeeded", "order.paid"}[i%2]
				evs[i] = publisher.Event{Type: typ, TenantID: []string{"t1", "t2"}[i%3/2], Data: sampleData[typ], Key: fmt.Sprint("k", i%7)}
			}
			publishExpecting(ctx, t, f, evs, want)
		}
		reg := prometheus.NewRegistry()
		cfg := Config{Kafka: f.cfg, Guarantee: g, CommitInterval: MinCommitInterval, TransactionalID: "rt-run",
			Logger: slog.New(slog.DiscardHandler), Registerer: reg}

		publish(300)
		runUntilComplete(ctx, t, f, cfg, want, "first router")
		publish(200)
		runUntilComplete(ctx, t, f, cfg, want, "second router")

		got := readEndpointTopics(t, f, slices.Collect(maps.Keys(want)))
		for topic, ids := range want {
			for id := range ids {
				if n := got[topic][id]; n != 1 {
					t.Errorf("%s: event %s written %d times, want once", topic, id, n)
				}
			}
			if len(got[topic]) != len(ids) {
				t.Errorf("%s: %d distinct events, want %d", topic, len(got[topic]), len(ids))
			}
		}
		events := f.cfg.Topics().Events()
		ends, err := adm.ListEndOffsets(ctx, events)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(ctx, DefaultGroup)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) {
			c, _ := committed.Lookup(events, o.Partition)
			if c.At != o.Offset {
				t.Errorf("%s[%d]: committed %d, end %d", events, o.Partition, c.At, o.Offset)
			}
		})
		if n, err := metrics.Sum(reg, "hookstream_router_events_total", "result", "routed"); err != nil || n != 500 {
			t.Errorf("routed events = %v (%v), want 500", n, err)
		}
	})
}

// underEachGuarantee runs test once per guarantee, each on a fixture of
// its own with a 90 s deadline.
func underEachGuarantee(t *testing.T, test func(t *testing.T, g Guarantee, f *fixture, ctx context.Context)) {
	for _, g := range []Guarantee{ExactlyOnce, AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			test(t, g, f, ctx)
		})
	}
}

// publishExpecting publishes evs and adds to want, per endpoint topic, the
// ids of the events the registry routes there.
func publishExpecting(ctx context.Context, t *testing.T, f *fixture, evs []publisher.Event, want map[string]map[string]bool) {
	t.Helper()
	ids, err := f.prod.PublishBatch(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		for _, e := range f.reg.Match(nil, ev.TenantID, ev.Type) {
			topic := f.cfg.Topics().Endpoint(e.ID)
			if want[topic] == nil {
				want[topic] = map[string]bool{}
			}
			want[topic][ids[i]] = true
		}
	}
}

// runUntilComplete runs a router with cfg until every endpoint topic holds
// the wanted events, then stops it; it fails the test if the router stops
// first or ctx ends.
func runUntilComplete(ctx context.Context, t *testing.T, f *fixture, cfg Config, want map[string]map[string]bool, name string) {
	t.Helper()
	r, err := New(cfg, f.reg, f.cat)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	for !complete(t, f, want) {
		select {
		case err := <-done:
			stop()
			t.Fatalf("%s: Run returned early: %v", name, err)
		case <-ctx.Done():
			stop()
			<-done
			t.Fatalf("%s: timed out waiting for the fan-out", name)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("%s: Run: %v", name, err)
	}
}

// complete reports whether every endpoint topic holds at least the wanted
// events (read committed).
func complete(t *testing.T, f *fixture, want map[string]map[string]bool) bool {
	got := readEndpointTopics(t, f, slices.Collect(maps.Keys(want)))
	for topic, ids := range want {
		for id := range ids {
			if got[topic][id] == 0 {
				return false
			}
		}
	}
	return true
}

// readEndpointTopics counts, per topic, the committed records of each event
// id, reading up to the topics' current last stable offsets.
func readEndpointTopics(t *testing.T, f *fixture, topics []string) map[string]map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(f.cfg.ClientOpts("test-reader",
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // markers advance the reader to the last stable offset
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]map[int32]int64{}
	remaining := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining++
		}
	})
	out := map[string]map[string]int{}
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %v: %v", topics, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("reading %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(r.Topic, r.Partition)
			if next[r.Topic] == nil {
				next[r.Topic] = map[int32]int64{}
			}
			before := next[r.Topic][r.Partition]
			next[r.Topic][r.Partition] = r.Offset + 1
			if before < end.Offset && r.Offset+1 >= end.Offset {
				remaining--
			}
			if r.Offset >= end.Offset || r.Attrs.IsControl() {
				return
			}
			env, err := f.cat.DecodeEnvelope(r.Value)
			if err != nil {
				t.Fatalf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if out[r.Topic] == nil {
				out[r.Topic] = map[string]int{}
			}
			out[r.Topic][env.ID]++
		})
	}
	return out
}

// An endpoint whose topic has gone (deleted by hand, or lost with a broker's
// data) must not stall every other endpoint: the router recreates the topic
// of an endpoint that is still in the registry and goes on.
func TestRunRecreatesAMissingEndpointTopic(t *testing.T) {
	underEachGuarantee(t, func(t *testing.T, g Guarantee, f *fixture, ctx context.Context) {
		adm := f.adm
		gone := f.cfg.Topics().Endpoint("t2-a")
		if _, err := adm.DeleteTopic(ctx, gone); err != nil {
			t.Fatal(err)
		}

		evs := make([]publisher.Event, 60)
		for i := range evs {
			evs[i] = publisher.Event{Type: "payment.succeeded", TenantID: []string{"t1", "t2"}[i%2], Data: sampleData["payment.succeeded"]}
		}
		want := map[string]map[string]bool{}
		publishExpecting(ctx, t, f, evs, want)
		if len(want[gone]) == 0 || len(want) < 2 {
			t.Fatalf("the events reach %d endpoint topics, %d of them to %s; want some to it and to others", len(want), len(want[gone]), gone)
		}

		reg := prometheus.NewRegistry()
		runUntilComplete(ctx, t, f, Config{Kafka: f.cfg, Guarantee: g, CommitInterval: MinCommitInterval, TransactionalID: "rt-gone",
			Logger: slog.New(slog.DiscardHandler), Registerer: reg}, want, "router with "+gone+" deleted")
		if n, err := metrics.Sum(reg, "hookstream_router_topics_recreated_total"); err != nil || n < 1 {
			t.Errorf("hookstream_router_topics_recreated_total = %v (%v), want at least 1", n, err)
		}
	})
}

// A record on the events topic too large to copy (over kafka.MaxEventBytes,
// and over what the router's client writes at all: another publisher with
// a larger batch limit wrote it) must not hold back the events around it:
// it is quarantined without its key, value and headers, and the rest is
// routed. Before, every write of its batch was retried for ever.
func TestRunQuarantinesEventsTooLargeToCopy(t *testing.T) {
	underEachGuarantee(t, func(t *testing.T, g Guarantee, f *fixture, ctx context.Context) {
		evs := make([]publisher.Event, 40)
		for i := range evs {
			evs[i] = publisher.Event{Type: "payment.succeeded", TenantID: []string{"t1", "t2"}[i%2], Data: sampleData["payment.succeeded"], Key: "k"}
		}
		want := map[string]map[string]bool{}
		publishExpecting(ctx, t, f, evs[:20], want)

		cl, err := kgo.NewClient(f.cfg.ClientOpts("test-big-publisher", kgo.ProducerBatchMaxBytes(1_040_000))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		big := []*kgo.Record{
			{Topic: f.cfg.Topics().Events(), Key: []byte("k"), Value: make([]byte, 1_000_100)},
			{Topic: f.cfg.Topics().Events(), Key: []byte("k"), Value: f.raw(t, rawEnvelope{ID: "evt_big", Type: "payment.succeeded", TenantID: "t1", Data: f.bigData(t, 1_000_000)})},
		}
		if err := cl.ProduceSync(ctx, big...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		publishExpecting(ctx, t, f, evs[20:], want)

		reg := prometheus.NewRegistry()
		runUntilComplete(ctx, t, f, Config{Kafka: f.cfg, Guarantee: g, CommitInterval: MinCommitInterval, TransactionalID: "rt-big",
			Logger: slog.New(slog.DiscardHandler), Registerer: reg}, want, "router with two records too large to copy")
		if n, err := metrics.Sum(reg, "hookstream_router_events_total", "result", "quarantined"); err != nil || n != 2 {
			t.Errorf("quarantined events = %v (%v), want 2", n, err)
		}

		got := readN(ctx, t, f, f.cfg.Topics().Invalid(), len(big))
		for i, q := range got {
			hs := map[string]string{}
			for _, h := range q.Headers {
				hs[h.Key] = string(h.Value)
			}
			src := big[i]
			if len(q.Key) != 0 || len(q.Value) != 0 || len(q.Headers) != 4 {
				t.Errorf("quarantined record %d: key %q, %d bytes of value, %d headers; want only the router's 4 headers", i, q.Key, len(q.Value), len(q.Headers))
			}
			if hs[HeaderSourcePartition] != strconv.Itoa(int(src.Partition)) || hs[HeaderSourceOffset] != strconv.FormatInt(src.Offset, 10) {
				t.Errorf("quarantined record %d points at %s[%s]@%s, want [%d]@%d", i, hs[HeaderSourceTopic], hs[HeaderSourcePartition], hs[HeaderSourceOffset], src.Partition, src.Offset)
			}
			if !strings.HasPrefix(hs[HeaderError], "event too large: ") {
				t.Errorf("quarantined record %d: %s = %q", i, HeaderError, hs[HeaderError])
			}
		}
	})
}

// readN reads the first n committed records of topic, failing the test if
// ctx ends first.
func readN(ctx context.Context, t *testing.T, f *fixture, topic string, n int) []*kgo.Record {
	t.Helper()
	rd, err := kgo.NewClient(f.cfg.ClientOpts("test-reader-"+topic,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []*kgo.Record
	for len(got) < n {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s holds %d records, want %d", topic, len(got), n)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// A copy Kafka refuses for good (here: larger than its endpoint topic's
// max.message.bytes) must not hold back the other endpoints' copies: it is
// written as a dead letter (reason unwritable) that dlq redrive can write
// to the topic once it is fixed; and if the dead-letter topic refuses it
// too, as a quarantine record without the value. Before, the batch was
// retried for ever.
func TestRunWritesRefusedCopiesAnotherWay(t *testing.T) {
	for _, dlqRefuses := range []bool{false, true} {
		t.Run(fmt.Sprintf("dlq refuses %v", dlqRefuses), func(t *testing.T) {
			underEachGuarantee(t, func(t *testing.T, g Guarantee, f *fixture, ctx context.Context) {
				refusing := f.cfg.Topics().Endpoint("t2-a")
				small := []string{refusing}
				if dlqRefuses {
					small = append(small, f.cfg.Topics().DLQ())
				}
				for _, topic := range small {
					rs, err := f.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("120")}}, topic)
					if err == nil {
						_, err = rs.On(topic, nil)
					}
					if err != nil {
						t.Fatalf("setting %s's max.message.bytes: %v", topic, err)
					}
				}
				evs := make([]publisher.Event, 40)
				for i := range evs {
					evs[i] = publisher.Event{Type: "payment.succeeded", TenantID: []string{"t1", "t2"}[i%2], Data: sampleData["payment.succeeded"], Key: fmt.Sprint("k", i)}
				}
				want := map[string]map[string]bool{}
				publishExpecting(ctx, t, f, evs, want)
				refused := want[refusing]
				delete(want, refusing)
				if len(refused) != 20 || len(want) == 0 {
					t.Fatalf("%d events for %s and %d other topics; want 20 and some", len(refused), refusing, len(want))
				}

				reg := prometheus.NewRegistry()
				r, err := New(Config{Kafka: f.cfg, Guarantee: g, CommitInterval: MinCommitInterval, TransactionalID: "rt-refused",
					Logger: slog.New(slog.DiscardHandler), Registerer: reg}, f.reg, f.cat)
				if err != nil {
					t.Fatal(err)
				}
				rctx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- r.Run(rctx) }()
				writtenTo := "dlq"
				if dlqRefuses {
					writtenTo = "invalid"
				}
				for {
					n, _ := metrics.Sum(reg, "hookstream_router_unwritable_copies_total", "written_to", writtenTo)
					if n >= float64(len(refused)) && complete(t, f, want) {
						break
					}
					select {
					case err := <-done:
						stop()
						t.Fatalf("Run returned early: %v", err)
					case <-ctx.Done():
						stop()
						<-done
						t.Fatalf("timed out: %v copies written to %s, other endpoints complete: %v", n, writtenTo, complete(t, f, want))
					case <-time.After(50 * time.Millisecond):
					}
				}
				stop()
				if err := <-done; err != nil {
					t.Fatal(err)
				}

				if !dlqRefuses {
					for _, rec := range readN(ctx, t, f, f.cfg.Topics().DLQ(), len(refused)) {
						var dl deliverer.DeadLetter
						if err := f.cat.Unmarshal(rec.Value, deliverer.DeadLetterRecordName, &dl); err != nil {
							t.Fatal(err)
						}
						env, err := f.cat.DecodeEnvelope(dl.Envelope)
						if err != nil {
							t.Fatal(err)
						}
						if !refused[dl.EventID] || env.ID != dl.EventID || dl.EndpointID != "t2-a" || dl.Reason != deliverer.ReasonUnwritable ||
							!strings.Contains(dl.LastError, "MESSAGE_TOO_LARGE") || string(rec.Key) != "t2-a" {
							t.Errorf("dead letter: event %s (envelope %s), endpoint %s, reason %s, last error %q, key %q",
								dl.EventID, env.ID, dl.EndpointID, dl.Reason, dl.LastError, rec.Key)
						}
						hs := map[string]string{}
						for _, h := range rec.Headers {
							hs[h.Key] = string(h.Value)
						}
						if hs[deliverer.HeaderEventKey] == "" || hs[deliverer.HeaderReason] != deliverer.ReasonUnwritable || hs[deliverer.HeaderRetryEndpoint] != "t2-a" {
							t.Errorf("dead letter headers %v", hs)
						}
						delete(refused, dl.EventID)
					}
					if len(refused) > 0 {
						t.Errorf("%d refused copies have no dead letter", len(refused))
					}
					return
				}
				for _, q := range readN(ctx, t, f, f.cfg.Topics().Invalid(), len(refused)) {
					hs := map[string]string{}
					for _, h := range q.Headers {
						hs[h.Key] = string(h.Value)
					}
					if len(q.Value) != 0 || !strings.HasPrefix(hs[HeaderError], "event copy unwritable: ") || !strings.Contains(hs[HeaderError], "t2-a") {
						t.Errorf("quarantine record of %d bytes, error %q", len(q.Value), hs[HeaderError])
					}
				}
			})
		})
	}
}

// A cluster whose message.max.bytes is below franz-go's default batch
// limit refuses a full batch outright, however small its records: under
// load every busy endpoint's copies would be refused (and dead-lettered).
// The router caps its batches at the brokers' limit when it starts.
func TestRunFitsBatchesToTheBrokers(t *testing.T) {
	underEachGuarantee(t, func(t *testing.T, g Guarantee, f *fixture, ctx context.Context) {
		const limit = 20_000
		rs, err := f.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "message.max.bytes", Value: kadm.StringPtr(strconv.Itoa(limit))}})
		if err == nil {
			err = rs[0].Err
		}
		if err != nil {
			t.Fatalf("setting message.max.bytes: %v", err)
		}
		// Kafka applies a dynamic broker config a moment after it is altered.
		fitted, err := f.cfg.FitBatchesToBrokers(ctx, f.adm)
		for err == nil && fitted.MaxBatchBytes != limit && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			fitted, err = f.cfg.FitBatchesToBrokers(ctx, f.adm)
		}
		if err != nil || fitted.MaxBatchBytes != limit {
			t.Fatalf("FitBatchesToBrokers = %d, %v; want %d", fitted.MaxBatchBytes, err, limit)
		}
		pub, err := publisher.New(publisher.WithKafkaConfig(fitted), publisher.WithCatalog(f.cat))
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		evs := make([]publisher.Event, 300)
		for i := range evs {
			evs[i] = publisher.Event{Type: "payment.succeeded", TenantID: "t2", Data: sampleData["payment.succeeded"]}
		}
		ids, err := pub.PublishBatch(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]bool{f.cfg.Topics().Endpoint("t2-a"): {}}
		for _, id := range ids {
			want[f.cfg.Topics().Endpoint("t2-a")][id] = true
		}
		reg := prometheus.NewRegistry()
		runUntilComplete(ctx, t, f, Config{Kafka: f.cfg, Guarantee: g, CommitInterval: MinCommitInterval, TransactionalID: "rt-fit",
			Logger: slog.New(slog.DiscardHandler), Registerer: reg}, want, "router on brokers with a small message.max.bytes")
		if n, err := metrics.Sum(reg, "hookstream_router_unwritable_copies_total"); err != nil || n != 0 {
			t.Errorf("copies refused = %v (%v), want 0", n, err)
		}
	})
}
