package main

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafkatest"
)

// Every probe runs against a broker and counts what it sent, never more
// than its pace.
func TestRunProbes(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	br := &broker{kind: c.Kind, addrs: c.Addrs, pids: []int{os.Getpid()}} // kfake runs in this process
	const rate, d = 2000.0, 500 * time.Millisecond
	probes := []costProbe{
		{name: "one", unit: "request", partitions: 1, run: syncRequests(200, 1)},
		{name: "wide", unit: "request", partitions: 5, consume: true, run: syncRequests(50, 5)},
		{name: "stream", unit: "record", partitions: 3, consume: true, run: stream(rate)},
		{name: "txn", unit: "transaction", partitions: 5, txn: true, consume: true, run: syncTxns(15, 5)},
		{name: "split", unit: "transaction", partitions: 5, txn: true, consume: true, split: 2, run: syncTxns(15, 5)},
	}
	res, err := runProbes(ctx, br, probes, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(probes) {
		t.Fatalf("%d results for %d probes", len(res), len(probes))
	}
	for i, want := range []float64{200, 50, rate, 15, 15} { // units per second
		r := res[i]
		if r.Probe != probes[i].name || r.Unit != probes[i].unit {
			t.Errorf("result %d is %q/%q, want %q/%q", i, r.Probe, r.Unit, probes[i].name, probes[i].unit)
		}
		// Paced, so never above the pace; how far below it a machine busy
		// with other tests (and -race) falls is not this test's business.
		if r.PerSecond <= 0 || r.PerSecond > want*1.1 {
			t.Errorf("%s: %.0f %s/s, want some, at most about %.0f", r.Probe, r.PerSecond, r.Unit, want)
		}
		if r.BrokerCores < 0 || r.MsPerUnit < 0 {
			t.Errorf("%s: negative CPU: %+v", r.Probe, r)
		}
	}
}

// idleTopics creates the topics it measures, and its figures are CPU
// rates a broker can have.
func TestIdleTopics(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br := &broker{kind: c.Kind, addrs: c.Addrs, pids: []int{os.Getpid()}}
	const n = 600 // two creation batches
	res, err := idleTopics(ctx, br, n, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.topics != n || res.before < 0 || res.after < 0 || res.createSeconds <= 0 || res.createCPU < 0 {
		t.Errorf("idleTopics = %+v", res)
	}
	topics, err := kadm.NewClient(c.Client(t)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "idle") {
			made++
		}
	}
	if made != n {
		t.Errorf("%d idle topics on the broker, want %d", made, n)
	}
}

// One consumer reads the whole topic from its end; split consumers share
// the partitions between them, each exactly once.
func TestConsumerAssignments(t *testing.T) {
	if got := consumerAssignments(costProbe{partitions: 4}, "t"); got != nil {
		t.Errorf("no consume: %d consumers, want none", len(got))
	}
	one := consumerAssignments(costProbe{partitions: 4, consume: true}, "t")
	if len(one) != 1 {
		t.Fatalf("one consumer of the topic: got %d", len(one))
	}
	cl, err := kgo.NewClient(one[0]...)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	switch v := cl.OptValue(kgo.ConsumeTopics).(type) {
	case []string: // franz-go v1.22.3 and later
		topics = v
	case map[string]*regexp.Regexp: // before
		for k := range v {
			topics = append(topics, k)
		}
	}
	reset := cl.OptValue(kgo.ConsumeResetOffset).(kgo.Offset)
	cl.Close()
	if !slices.Equal(topics, []string{"t"}) || reset.String() != kgo.NewOffset().AtEnd().String() {
		t.Errorf("one consumer: topics %v from %v, want [t] from the end", topics, reset)
	}
	got := consumerAssignments(costProbe{partitions: 7, consume: true, split: 3}, "t")
	if len(got) != 3 {
		t.Fatalf("split 3: %d consumers", len(got))
	}
	seen := map[int32]int{}
	for _, o := range got {
		cl, err := kgo.NewClient(o...)
		if err != nil {
			t.Fatal(err)
		}
		parts := cl.OptValue(kgo.ConsumePartitions).(map[string]map[int32]kgo.Offset)["t"]
		cl.Close()
		if len(parts) < 2 || len(parts) > 3 {
			t.Errorf("a consumer has %d of 7 partitions, want 2 or 3", len(parts))
		}
		for p := range parts {
			seen[p]++
		}
	}
	for p := int32(0); p < 7; p++ {
		if seen[p] != 1 {
			t.Errorf("partition %d read by %d consumers, want 1", p, seen[p])
		}
	}
}
