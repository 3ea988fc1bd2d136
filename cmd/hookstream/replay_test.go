package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/ops"
	"github.com/hookstream/hookstream/pkg/registry"
)

// committed returns the group's committed offset per partition of topic
// (-1 = none).
func (e *opsEnv) committed(group, topic string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

func (e *opsEnv) commit(group, topic string, offsets map[int32]int64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os := kadm.Offsets{}
	for p, o := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	resp, err := e.adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// produceTxn produces recs in one transaction, committed or aborted.
func (e *opsEnv) produceTxn(commit bool, recs ...*kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := e.cluster.Client(e.t, kgo.TransactionalID(fmt.Sprintf("%s-txn-%v", e.kcfg.Prefix, commit)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		e.t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		e.t.Fatal(err)
	}
	cl.Close()
}

func (e *opsEnv) endpointRecord(topic string, partition int32, key string, ts time.Time) *kgo.Record {
	env, id := e.envelope()
	return &kgo.Record{Topic: topic, Partition: partition, Key: []byte(key), Value: env, Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: ops.HeaderEventID, Value: []byte(id)}}}
}

func equalOffsets(got, want map[int32]int64) bool {
	if len(got) != len(want) {
		return false
	}
	for p, o := range want {
		if got[p] != o {
			return false
		}
	}
	return true
}

func testReplayRewind(t *testing.T, e *opsEnv) {
	ep := e.createEndpoint(registry.Endpoint{Partitions: 3})
	topic := e.kcfg.Topics().Endpoint(ep.ID)
	old, recent := time.Now().Add(-3*time.Hour), time.Now().Add(-time.Minute)
	var recs []*kgo.Record
	for p, n := range map[int32][2]int{0: {3, 2}, 1: {1, 4}, 2: {0, 2}} { // partition: {old, recent}
		for i := range n[0] + n[1] {
			ts := recent
			if i < n[0] {
				ts = old
			}
			recs = append(recs, e.endpointRecord(topic, p, "acme", ts))
		}
	}
	e.produce(recs...)
	group := e.kcfg.Prefix + "-deliverer"
	e.commit(group, topic, map[int32]int64{0: 5, 1: 5}) // partition 2: never consumed

	out := e.mustRun("replay", "--endpoint", ep.ID, "--from", "-1h", "--group", group, "--dry-run")
	if !strings.Contains(out, "dry run: would rewind 6 offset(s)") {
		t.Errorf("dry run:\n%s", out)
	}
	if got := e.committed(group, topic); !equalOffsets(got, map[int32]int64{0: 5, 1: 5, 2: -1}) {
		t.Fatalf("dry run changed the offsets: %v", got)
	}

	e.mustRun("replay", "--endpoint", ep.ID, "--from", "-1h", "--group", group)
	if got := e.committed(group, topic); !equalOffsets(got, map[int32]int64{0: 3, 1: 1, 2: -1}) {
		t.Fatalf("after --from -1h: committed %v, want 0:3 1:1 and partition 2 left alone", got)
	}

	from := time.Now().Add(-5 * time.Hour).UTC().Format(time.RFC3339)
	e.mustRun("replay", "--endpoint", ep.ID, "--from", from, "--group", group)
	if got := e.committed(group, topic); !equalOffsets(got, map[int32]int64{0: 0, 1: 0, 2: -1}) {
		t.Fatalf("after --from %s: committed %v, want 0:0 1:0", from, got)
	}
	e.commit(group, topic, map[int32]int64{0: 4, 1: 5})
	e.mustRun("replay", "--endpoint", ep.ID, "--from", "earliest", "--group", group)
	if got := e.committed(group, topic); !equalOffsets(got, map[int32]int64{0: 0, 1: 0, 2: -1}) {
		t.Fatalf("after --from earliest: committed %v, want 0:0 1:0", got)
	}

	// Offsets only move back.
	out = e.mustRun("replay", "--endpoint", ep.ID, "--from", "-1h", "--group", group)
	if got := e.committed(group, topic); !equalOffsets(got, map[int32]int64{0: 0, 1: 0, 2: -1}) {
		t.Fatalf("a later --from moved the offsets forward: %v", got)
	}
	if !strings.Contains(out, "nothing to rewind") || !strings.Contains(out, "not got past the start") || !strings.Contains(out, "no committed offset") {
		t.Errorf("replay output:\n%s", out)
	}
}

func testReplayLiveGroup(t *testing.T, e *opsEnv) {
	ep := e.createEndpoint(registry.Endpoint{})
	topic := e.kcfg.Topics().Endpoint(ep.ID)
	e.produce(e.endpointRecord(topic, 0, "acme", time.Time{}), e.endpointRecord(topic, 0, "acme", time.Time{}))
	group := e.kcfg.Prefix + "-live"

	member, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.Addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n := 0; n < 2; { // consuming means joined and assigned
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the group member consumed nothing within 30s")
		}
		n += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := e.run("replay", "--endpoint", ep.ID, "--from", "earliest", "--group", group)
	if code != 1 || !strings.Contains(errOut, "1 live member(s)") || !strings.Contains(errOut, "--copy") || out != "" {
		t.Errorf("replay with a live member: exit %d\nstdout %q\nstderr %q\nwant exit 1 and the advice", code, out, errOut)
	}
	code, out, errOut = e.run("replay", "--endpoint", ep.ID, "--from", "earliest", "--group", group, "--dry-run")
	if code != 1 || !strings.Contains(errOut, "live member") || !strings.Contains(out, "would rewind 2 offset(s)") {
		t.Errorf("dry run with a live member: exit %d\n%s%s", code, out, errOut)
	}
	if got := e.committed(group, topic); got[0] != 2 {
		t.Fatalf("offsets changed while the member was live: %v", got)
	}

	member.Close() // leaves the group
	e.mustRun("replay", "--endpoint", ep.ID, "--from", "earliest", "--group", group)
	if got := e.committed(group, topic); got[0] != 0 {
		t.Fatalf("after the member left: committed %v, want 0", got)
	}
}

func testReplayCopy(t *testing.T, e *opsEnv) {
	ep := e.createEndpoint(registry.Endpoint{Partitions: 2})
	topic := e.kcfg.Topics().Endpoint(ep.ID)
	// Like the router: transactions, so the topic holds commit markers; an
	// aborted record must not be copied.
	originals := []*kgo.Record{e.endpointRecord(topic, 0, "k1", time.Time{}), e.endpointRecord(topic, 0, "k2", time.Time{}), e.endpointRecord(topic, 1, "k3", time.Time{})}
	e.produceTxn(true, originals[:2]...)
	e.produceTxn(false, e.endpointRecord(topic, 1, "aborted", time.Time{}))
	e.produceTxn(true, originals[2])

	out := e.mustRun("replay", "--endpoint", ep.ID, "--from", "earliest", "--copy", "--dry-run")
	if !strings.Contains(out, "dry run: would copy 3 record(s)") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := len(e.readTopic(topic)); n != 3 {
		t.Fatalf("dry run: topic has %d records, want 3", n)
	}

	out = e.mustRun("replay", "--endpoint", ep.ID, "--from", "earliest", "--copy")
	if !strings.Contains(out, "copied 3 record(s)") {
		t.Errorf("copy:\n%s", out)
	}
	recs := e.readTopic(topic)
	if len(recs) != 6 {
		t.Fatalf("after --copy the topic has %d records, want 6", len(recs))
	}
	byRef := map[string]*kgo.Record{}
	for _, r := range recs {
		byRef[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = r
	}
	copies := 0
	for _, r := range recs {
		from := header(r, ops.HeaderReplayedFrom)
		if from == "" {
			continue
		}
		copies++
		orig := byRef[from]
		if orig == nil || orig.Partition != r.Partition || !bytes.Equal(orig.Key, r.Key) || !bytes.Equal(orig.Value, r.Value) ||
			header(orig, ops.HeaderEventID) != header(r, ops.HeaderEventID) || string(r.Key) == "aborted" {
			t.Errorf("copy at %d/%d (key %s) does not match its original %s", r.Partition, r.Offset, r.Key, from)
		}
	}
	if copies != 3 {
		t.Errorf("%d copies, want 3", copies)
	}

	// Again: the originals are copied once more, the earlier copies not.
	out = e.mustRun("replay", "--endpoint", ep.ID, "--from", "earliest", "--copy")
	if !strings.Contains(out, "copied 3 record(s); 3 copies of records in the range left out") {
		t.Errorf("second copy:\n%s", out)
	}
	if n := len(e.readTopic(topic)); n != 9 {
		t.Errorf("after the second --copy the topic has %d records, want 9", n)
	}
}
