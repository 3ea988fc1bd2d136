package kafkatest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafkatest"
)

// These tests start whatever kind HOOKSTREAM_TEST_BROKER selects: kfake by
// default, real Kafka when it says "kafka" (as the second `make test` pass
// does). Real Kafka is never started otherwise, so a plain `go test ./...`
// stays fast and needs no Java.

func TestKindFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env, want string
		err       bool
	}{
		{"", kafkatest.KindKfake, false},
		{"kfake", kafkatest.KindKfake, false},
		{"kafka", kafkatest.KindKafka, false},
		{" kafka ", kafkatest.KindKafka, false},
		{"redpanda", "", true},
	} {
		t.Setenv(kafkatest.EnvBroker, tc.env)
		got, err := kafkatest.KindFromEnv()
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s=%q: got (%q, %v), want %q (error %v)", kafkatest.EnvBroker, tc.env, got, err, tc.want, tc.err)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := kafkatest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "scripts/kafka.sh"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("RepoRoot() = %s: %v", root, err)
		}
	}
}

// fakeTB records Fatal and Skip instead of ending the real test, so a test
// can check how Start fails.
type fakeTB struct {
	testing.TB
	fatal    string
	skipped  bool
	cleanups []func()
}

func (f *fakeTB) Helper()             {}
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Failed() bool        { return f.fatal != "" }
func (f *fakeTB) Cleanup(fn func())   { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.fatal += fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal += fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.fatal += fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(...any)          { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) Skipf(string, ...any) { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) SkipNow()             { f.skipped = true; runtime.Goexit() }

// A real cluster that cannot start must fail the test with the script's
// explanation, never skip it. A fake "java" that reports Java 11 makes the
// script refuse before it needs Maven or a JVM, so this runs anywhere.
func TestStartRealFailsWithoutJava17(t *testing.T) {
	javaHome := t.TempDir()
	if err := os.MkdirAll(filepath.Join(javaHome, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeJava := "#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n"
	if err := os.WriteFile(filepath.Join(javaHome, "bin", "java"), []byte(fakeJava), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAVA_HOME", javaHome)
	t.Setenv("HOOKSTREAM_KAFKA_CACHE", t.TempDir())
	t.Setenv("TMPDIR", t.TempDir()) // where Start keeps the logs of a failed cluster

	ftb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		kafkatest.Start(ftb, kafkatest.Kind(kafkatest.KindKafka))
	}()
	<-done
	for i := len(ftb.cleanups) - 1; i >= 0; i-- {
		ftb.cleanups[i]()
	}
	if ftb.skipped {
		t.Fatal("Start skipped the test; it must fail it")
	}
	if !strings.Contains(ftb.fatal, "needs Java 17+") {
		t.Fatalf("Start failure = %q, want the script's Java 17+ error", ftb.fatal)
	}
	t.Logf("Start failed as it should:\n%s", ftb.fatal)
}

func TestProduceConsume(t *testing.T) {
	c := kafkatest.Start(t)
	if len(c.Addrs) != 1 {
		t.Fatalf("Addrs = %v, want one address", c.Addrs)
	}
	const topic, n = "produce-consume", 50
	c.CreateTopic(t, topic, 3, nil)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range n {
		r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	got := consumeAll(ctx, t, c, topic, n)
	for i := range n {
		if v := got[strconv.Itoa(i)]; v != "v"+strconv.Itoa(i) {
			t.Errorf("record %d: value %q", i, v)
		}
	}
}

// Both kinds must refuse to create a topic on first use, even when the client
// allows it, so tests catch code that forgets to create its topics.
func TestNoAutoTopicCreation(t *testing.T) {
	c := kafkatest.Start(t)
	const topic = "never-created"
	cl := c.Client(t, kgo.AllowAutoTopicCreation(), kgo.UnknownTopicRetries(1),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to a missing topic: err = %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	topics, err := c.Admin(t).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(topic) {
		t.Fatalf("topic %q was created implicitly", topic)
	}
}

// TestNodeLoss crashes the leader of partition 0 of an RF 3, min ISR 2 topic
// while an acks=all producer runs, checks that every record is read back and
// that the node rejoins. On kfake (no replication) it checks client failover.
func TestNodeLoss(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Nodes(3))
	if len(c.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3", c.Addrs)
	}
	const topic, n, killAt = "node-loss", 3000, 600
	minISR := "2"
	c.CreateTopic(t, topic, 6, map[string]*string{"min.insync.replicas": &minISR})
	adm := c.Admin(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	victim := leaderIndex(ctx, t, c, adm, topic, 0)

	prod := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	var (
		acked    atomic.Int64
		errMu    sync.Mutex
		firstErr error
		done     = make(chan struct{})
	)
	start := time.Now()
	go func() { // paced, so the kill lands mid-stream
		defer close(done)
		for i := range n {
			r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
			prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				acked.Add(1)
			})
			if i%50 == 49 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	for acked.Load() < killAt {
		if ctx.Err() != nil {
			t.Fatalf("only %d records acknowledged before the deadline", acked.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()
	c.KillNode(t, victim)
	t.Logf("killed node index %d (%s) after %d acks, %v into producing", victim, c.Addrs[victim], acked.Load(), killed.Sub(start).Round(time.Millisecond))
	<-done
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	errMu.Lock()
	err := firstErr
	errMu.Unlock()
	if err != nil {
		t.Fatalf("acks=all produce failed after losing one node: %v", err)
	}
	t.Logf("all %d records acknowledged %v after the kill", acked.Load(), time.Since(killed).Round(time.Millisecond))

	got := consumeAll(ctx, t, c, topic, n)
	for i := range n {
		if _, ok := got[strconv.Itoa(i)]; !ok {
			t.Errorf("record %d lost", i)
		}
	}

	restart := time.Now()
	c.StartNode(t, victim)
	if c.Kind == kafkatest.KindKafka {
		waitFullISR(ctx, t, adm, topic, 3)
	}
	t.Logf("node index %d back (full ISR on real Kafka) after %v", victim, time.Since(restart).Round(time.Millisecond))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after-restart")}).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
}

// consumeAll reads topic from the start until it has want distinct keys and
// returns key -> value.
func consumeAll(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string, want int) map[string]string {
	t.Helper()
	cons := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := make(map[string]string, want)
	dups := 0
	for len(got) < want {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), want)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if _, ok := got[string(r.Key)]; ok {
				dups++
			}
			got[string(r.Key)] = string(r.Value)
		})
	}
	if dups > 0 {
		t.Logf("%d duplicate records", dups)
	}
	return got
}

// leaderIndex returns the index in c.Addrs of the leader of topic/partition.
func leaderIndex(ctx context.Context, t *testing.T, c *kafkatest.Cluster, adm *kadm.Client, topic string, partition int32) int {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := md.Topics[topic].Partitions[partition]; ok && p.Leader >= 0 {
			for _, b := range md.Brokers {
				if b.NodeID != p.Leader {
					continue
				}
				addr := fmt.Sprintf("%s:%d", b.Host, b.Port)
				for i, a := range c.Addrs {
					if a == addr {
						return i
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader for %s/%d", topic, partition)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitFullISR waits until every partition of topic has rf in-sync replicas.
func waitFullISR(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, rf int) {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		full := true
		for _, p := range md.Topics[topic].Partitions {
			if len(p.ISR) < rf {
				full = false
			}
		}
		if full && len(md.Topics[topic].Partitions) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ISR of %s did not grow back to %d", topic, rf)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
