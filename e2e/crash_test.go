package e2e

// Crash safety and broker loss, from the "delivery guarantees" issue:
//
//   - TestCrashDeliverer: kill -9 of a deliverer process mid-stream, then a
//     new one: every event arrives, duplicates only for what the killed
//     process had delivered but not committed.
//   - TestCrashRouter: kill -9 of a router process mid-stream, restarted with
//     the same transactional id: every event is fanned out exactly once.
//   - TestCrashRouterAtLeastOnce: the same with --guarantee=at-least-once:
//     every event fanned out, twice only past the committed offsets.
//   - TestBrokerLoss: a 3-node Kafka cluster (RF 3, min ISR 2) loses a node
//     mid-stream: nothing is lost and the publisher does not notice.
//
// Each starts its own broker (kfake, or real Kafka with
// HOOKSTREAM_TEST_BROKER=kafka).

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/router"
)

func createEndpoint(t *testing.T, e *env, url string, partitions int32) *registry.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := e.Admin.Create(ctx, registry.Endpoint{TenantID: "acme", URL: url, EventTypes: []string{"*"}, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func publishAll(t *testing.T, e *env, evs []producer.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for lo := 0; lo < len(evs); lo += 1000 {
		if _, err := e.Producer.PublishBatch(ctx, evs[lo:min(lo+1000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
}

// position is where a record sits in a topic.
type position struct {
	partition int32
	offset    int64
}

// idPositions maps each event id in recs to its positions, decoding the
// envelope of every record.
func idPositions(t *testing.T, e *env, recs []*kgo.Record) map[string][]position {
	t.Helper()
	out := map[string][]position{}
	for _, r := range recs {
		env, err := e.Catalog.DecodeEnvelope(r.Value)
		if err != nil {
			t.Fatalf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out[env.ID] = append(out[env.ID], position{r.Partition, r.Offset})
	}
	return out
}

// TestCrashDeliverer SIGKILLs a deliverer process once about a third of
// 5,000 events have arrived, starts another, and checks at-least-once
// delivery with duplicates only where the dead process had not committed.
func TestCrashDeliverer(t *testing.T) {
	hookstreamBinary(t) // built before the broker starts
	cluster := kafkatest.Start(t)
	t.Logf("broker: %s at %v", cluster.Kind, cluster.Addrs)
	e := newEnv(t, cluster)
	adm := kadm.NewClient(e.Client)
	recv := newTrackedReceiver(t)

	const (
		path        = "/crash-deliverer"
		total       = 5000
		partitions  = 3
		inflight    = 8  // --max-inflight-per-partition
		queued      = 64 // --max-queued-per-partition
		commitEvery = 250 * time.Millisecond
	)
	ep := createEndpoint(t, e, recv.url(path), partitions)
	recv.trust(path, ep)
	topic := e.Kafka.Topics().Endpoint(ep.ID)
	e.StartRouter()

	args := append([]string{"deliverer"}, e.serviceArgs()...)
	args = append(args,
		"--max-inflight-per-partition="+strconv.Itoa(inflight),
		"--max-queued-per-partition="+strconv.Itoa(queued),
		"--commit-interval="+commitEvery.String(),
		"--attempt-timeout=5s",
		"--shutdown-timeout=5s",
		"--allow-private-targets", // the receiver is on loopback
	)
	start := time.Now()
	d1 := startHookstream(t, "deliverer-1", args...)

	evs := keyedEvents(t, e, "acme", total)
	want := eventIDs(evs)
	publishAll(t, e, evs)
	t.Logf("published %d events in %v", total, time.Since(start).Round(time.Millisecond))

	eventually(t, 90*time.Second, "a third of the events delivered by deliverer-1", func() bool {
		d1.check()
		return len(recv.ids(path)) >= total/3
	})
	killedAt := time.Now()
	d1.kill()
	// Requests the dead process had sent may still be in the handler, or
	// unread in a socket buffer (served before the server sees the closed
	// connection): wait until every connection it had is closed.
	eventually(t, 10*time.Second, "the receiver to finish the killed deliverer's requests and close its connections", func() bool {
		return recv.active.Load() == 0 && recv.conns.Load() == 0
	})
	before := recv.ids(path)
	beforeN := len(recv.deliveries(path))
	committed := groupOffsets(t, adm, deliverer.DefaultGroup, topic)
	window := recv.finishedBetween(killedAt.Add(-3*commitEvery), time.Now())
	t.Logf("deliverer-1 killed after %v: %d deliveries of %d distinct events; committed offsets %v; %d requests finished in the last %v before the kill",
		killedAt.Sub(start).Round(time.Millisecond), beforeN, len(before), committed, window, 3*commitEvery)
	for id, n := range before {
		if n > 1 {
			t.Errorf("deliverer-1 delivered %s %d times before the crash (the receiver never failed)", id, n)
		}
	}

	restartAt := time.Now()
	d2 := startHookstream(t, "deliverer-2", args...)
	var firstAfter time.Duration
	eventually(t, 120*time.Second, "every event delivered after the restart", func() bool {
		d2.check()
		if firstAfter == 0 && len(recv.deliveries(path)) > beforeN {
			firstAfter = time.Since(restartAt)
		}
		return missing(recv.receiver, path, want) == 0
	})
	allAfter := time.Since(restartAt)
	// Where every event sits in the endpoint topic (written once each by the
	// in-process router).
	recs := readTopic(t, cluster, topic, true)
	pos := idPositions(t, e, recs)
	eventually(t, 60*time.Second, "deliverer-2 to commit the whole endpoint topic", func() bool {
		d2.check()
		return caughtUp(t, adm, deliverer.DefaultGroup, topic, dataEnds(recs))
	})
	d2.stop(30 * time.Second)
	t.Logf("endpoint topic: data ends %v, high watermarks %v, deliverer group committed %v (a commit of last settled + 1 stops short of the final transaction marker)",
		dataEnds(recs), endOffsets(t, adm, topic, false), groupOffsets(t, adm, deliverer.DefaultGroup, topic))
	t.Logf("deliverer-2: first delivery %v after its start (the dead member's session has to expire first), all events %v after", firstAfter.Round(time.Millisecond), allAfter.Round(time.Millisecond))

	for id := range want {
		if len(pos[id]) != 1 {
			t.Fatalf("event %s is %d times in %s, want once", id, len(pos[id]), topic)
		}
	}

	after := recv.ids(path)
	dups, triple := 0, 0
	for id, n := range after {
		if !want[id] {
			t.Errorf("received webhook-id %s, which was never published", id)
			continue
		}
		dups += n - 1
		if n > 2 {
			triple++
		}
	}
	if triple > 0 {
		t.Errorf("%d events were delivered more than twice across one crash", triple)
	}
	// The duplicates the committed offsets predict: events deliverer-1
	// delivered at or after its partition's committed offset.
	var predicted, notRedelivered int
	for id := range before {
		p := pos[id][0]
		if p.offset >= committed[p.partition] {
			predicted++
			if after[id] < 2 {
				notRedelivered++
			}
		}
	}
	for id, n := range after {
		if n < 2 || !want[id] {
			continue
		}
		p := pos[id][0]
		if before[id] == 0 {
			t.Errorf("%s (partition %d offset %d) was delivered %d times by deliverer-2 alone", id, p.partition, p.offset, n)
		} else if p.offset < committed[p.partition] {
			t.Errorf("%s (partition %d offset %d) was delivered again although offset %d was committed", id, p.partition, p.offset, committed[p.partition])
		}
	}
	// Every delivery's body carries its webhook-id; a duplicate is the same
	// body again.
	bodies := map[string]map[string]any{}
	for _, d := range recv.deliveries(path) {
		if d.Body["id"] != d.ID {
			t.Fatalf("delivery with webhook-id %s has body id %v", d.ID, d.Body["id"])
		}
		if prev, ok := bodies[d.ID]; ok && !reflect.DeepEqual(prev, d.Body) {
			t.Errorf("duplicate of %s differs:\n first %v\nsecond %v", d.ID, prev, d.Body)
		}
		bodies[d.ID] = d.Body
	}
	// The bound from the deliverer's flags: what a partition can have in
	// flight or queued, plus what settled since the last completed commit
	// (at most a commit interval ago, plus one for a commit still in flight
	// and one more for a slow commit round trip).
	bound := partitions*(inflight+queued) + window
	t.Logf("RESULT deliverer crash (%s): %d events, %d duplicates (predicted by committed offsets: %d, %d of those not redelivered), bound %d = %d partitions × (%d in flight + %d queued) + %d settled in the last 3 × %v; %d delivered before the kill",
		cluster.Kind, total, dups, predicted, notRedelivered, bound, partitions, inflight, queued, window, commitEvery, len(before))
	if dups > bound {
		t.Errorf("%d duplicates exceed the bound %d", dups, bound)
	}
	if n := recv.badSig.Load(); n != 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
}

// routerCrash is what both router crash tests start from: a broker, an
// endpoint of 3 partitions behind a receiver, an in-process deliverer, a
// router process (router-1) and 5,000 events being published, a third of
// them delivered.
type routerCrash struct {
	cluster             *kafkatest.Cluster
	e                   *env
	adm                 *kadm.Client
	recv                *receiver
	r1                  *hsProcess
	pub                 *bgPublisher
	path, topic, events string
	args                []string // the router's command line, for its successor
	want                map[string]bool
	start               time.Time
	total               int
}

// startRouterCrash sets up a routerCrash whose router runs with flags (and
// a transactional id of the scenario's own, and --max-poll-records=100, so
// batches are small and a crash lands inside the stream).
func startRouterCrash(t *testing.T, path string, flags ...string) *routerCrash {
	t.Helper()
	hookstreamBinary(t)
	rc := &routerCrash{path: path, total: 5000}
	rc.cluster = kafkatest.Start(t)
	t.Logf("broker: %s at %v", rc.cluster.Kind, rc.cluster.Addrs)
	rc.e = newEnv(t, rc.cluster)
	rc.adm = kadm.NewClient(rc.e.Client)
	rc.recv = newReceiver(t)
	ep := createEndpoint(t, rc.e, rc.recv.url(path), 3)
	rc.recv.trust(path, ep)
	rc.topic = rc.e.Kafka.Topics().Endpoint(ep.ID)
	rc.events = rc.e.Kafka.Topics().Events()
	rc.e.StartDeliverer(rc.e.delivererConfig())

	rc.args = append(append([]string{"router"}, rc.e.serviceArgs()...),
		"--transactional-id="+rc.e.Kafka.Prefix+"-router-crash", "--max-poll-records=100")
	rc.args = append(rc.args, flags...)
	rc.start = time.Now()
	rc.r1 = startHookstream(t, "router-1", rc.args...)
	evs := keyedEvents(t, rc.e, "acme", rc.total)
	rc.want = eventIDs(evs)
	rc.pub = startPublisher(t, rc.e, evs, 50, 40*time.Millisecond, 0) // ~4 s
	eventually(t, 90*time.Second, "a third of the events delivered", func() bool {
		rc.r1.check()
		return len(rc.recv.ids(path)) >= rc.total/3
	})
	return rc
}

// TestCrashRouter SIGKILLs a router process mid-stream, preferably with a
// transaction open, restarts it with the same transactional id, and checks
// that every event is in the endpoint topic exactly once (read_committed)
// and reaches the receiver.
func TestCrashRouter(t *testing.T) {
	rc := startRouterCrash(t, "/crash-router")
	cluster, e, adm, recv, r1, pub := rc.cluster, rc.e, rc.adm, rc.recv, rc.r1, rc.pub
	path, topic, events, args, want, start, total := rc.path, rc.topic, rc.events, rc.args, rc.want, rc.start, rc.total
	// Kill while a transaction is open, if one can be caught within 10 s:
	// freeze the router, and if the endpoint topic's high watermark stays
	// past its last stable offset (an open transaction the frozen router
	// can no longer end), kill it; otherwise let it go on and try again.
	var open int64
	tries := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		tries++
		r1.freeze()
		open = openOffsets(t, adm, topic)
		for i := 0; i < 3 && open > 0; i++ { // an EndTxn already sent may still land
			if o := openOffsets(t, adm, topic); o != open {
				open = 0
			}
		}
		if open > 0 {
			break
		}
		r1.thaw()
		if pub.isDone() && caughtUp(t, adm, router.DefaultGroup, events, endOffsets(t, adm, events, false)) {
			break // nothing left to route: no transaction will open again
		}
	}
	acked := pub.acked.Load()
	r1.kill()
	t.Logf("router-1 killed after %v with %d of %d events published, %d delivered; open transaction at the kill: %v (%d offsets of the endpoint topic past its last stable offset; %d freeze attempts)",
		time.Since(start).Round(time.Millisecond), acked, total, len(recv.ids(path)), open > 0, open, tries)

	restartAt := time.Now()
	r2 := startHookstream(t, "router-2", args...)
	pub.wait(t, 60*time.Second)
	eventually(t, 120*time.Second, "every event delivered after the router restart", func() bool {
		r2.check()
		return missing(recv, path, want) == 0
	})
	allAfter := time.Since(restartAt)
	eventsEnd := endOffsets(t, adm, events, false) // not transactional: no marker at the end
	eventually(t, 60*time.Second, "router-2 to commit the whole events topic", func() bool {
		r2.check()
		return caughtUp(t, adm, router.DefaultGroup, events, eventsEnd)
	})
	eventually(t, 60*time.Second, "no open transaction on the endpoint topic", func() bool { return openOffsets(t, adm, topic) == 0 })
	r2.stop(30 * time.Second)

	committed := readTopic(t, cluster, topic, true)
	all := readTopic(t, cluster, topic, false)
	pos := idPositions(t, e, committed)
	for id, ps := range pos {
		switch {
		case !want[id]:
			t.Errorf("%s in %s was never published", id, topic)
		case len(ps) > 1:
			t.Errorf("event %s fanned out %d times: at %v", id, len(ps), ps)
		}
	}
	for id := range want {
		if len(pos[id]) == 0 {
			t.Errorf("event %s is missing from %s", id, topic)
		}
	}
	dups := 0
	for _, n := range recv.ids(path) {
		dups += n - 1
	}
	t.Logf("RESULT router crash (%s): %d events, %d committed records in the endpoint topic, %d aborted records (the killed transaction's), all delivered %v after the restart; %d duplicate deliveries at the receiver",
		cluster.Kind, total, len(committed), len(all)-len(committed), allAfter.Round(time.Millisecond), dups)
	if n := recv.badSig.Load(); n != 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
}

// TestCrashRouterAtLeastOnce SIGKILLs an at-least-once router mid-stream
// and restarts it: every event reaches the endpoint topic and the receiver,
// and the only events fanned out twice are those at or past the offsets
// the killed router had committed on the events topic.
func TestCrashRouterAtLeastOnce(t *testing.T) {
	rc := startRouterCrash(t, "/crash-router-alo", "--guarantee=at-least-once", "--commit-interval=250ms")
	cluster, e, adm, recv, r1, pub := rc.cluster, rc.e, rc.adm, rc.recv, rc.r1, rc.pub
	path, topic, events, args, want, start, total := rc.path, rc.topic, rc.events, rc.args, rc.want, rc.start, rc.total
	r1.kill()
	// The dead router commits nothing more: what is past these offsets and
	// already fanned out is fanned out again by its successor.
	committed := groupOffsets(t, adm, router.DefaultGroup, events)
	written := endOffsets(t, adm, topic, false)
	t.Logf("router-1 killed after %v with %d of %d events published; events topic committed %v; endpoint topic holds %v",
		time.Since(start).Round(time.Millisecond), pub.acked.Load(), total, committed, written)

	r2 := startHookstream(t, "router-2", args...)
	pub.wait(t, 60*time.Second)
	eventually(t, 120*time.Second, "every event delivered after the router restart", func() bool {
		r2.check()
		return missing(recv, path, want) == 0
	})
	eventsEnd := endOffsets(t, adm, events, false)
	eventually(t, 60*time.Second, "router-2 to commit the whole events topic", func() bool {
		r2.check()
		return caughtUp(t, adm, router.DefaultGroup, events, eventsEnd)
	})
	r2.stop(30 * time.Second)

	source := idPositions(t, e, readTopic(t, cluster, events, false))
	fanned := idPositions(t, e, readTopic(t, cluster, topic, false))
	// Every event goes to this one endpoint, in order per partition: what
	// router-1 wrote past its committed offsets is what router-2 rewrites.
	predicted := int64(0)
	for _, n := range written {
		predicted += n
	}
	for _, n := range committed {
		predicted -= n
	}
	twice := 0
	for id := range want {
		src := source[id]
		if len(src) != 1 {
			t.Fatalf("event %s is %d times in %s, want once", id, len(src), events)
		}
		switch n := len(fanned[id]); {
		case n == 0:
			t.Errorf("event %s is missing from %s", id, topic)
		case n > 2:
			t.Errorf("event %s fanned out %d times across one crash", id, n)
		case n == 2:
			twice++
			if src[0].offset < committed[src[0].partition] {
				t.Errorf("event %s (%s[%d]@%d) fanned out twice although offset %d was committed before the kill",
					id, events, src[0].partition, src[0].offset, committed[src[0].partition])
			}
		}
	}
	for id := range fanned {
		if !want[id] {
			t.Errorf("%s in %s was never published", id, topic)
		}
	}
	t.Logf("RESULT router crash, at-least-once (%s): %d events, %d fanned out twice (router-1 had written %d past its committed offsets)",
		cluster.Kind, total, twice, predicted)
	if n := recv.badSig.Load(); n != 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
}

// TestBrokerLoss runs the pipeline on a 3-node cluster whose topics have
// replication factor 3 and min.insync.replicas 2, stops the node leading the
// most of the env's partitions mid-stream and checks that nothing is lost
// and the publisher never gives up.
func TestBrokerLoss(t *testing.T) {
	if kind, _ := kafkatest.KindFromEnv(); kind != kafkatest.KindKafka {
		t.Skipf("broker loss needs real replication; %s=%s does not model it (run with %s=kafka, as `make test` does)", kafkatest.EnvBroker, kind, kafkatest.EnvBroker)
	}
	cluster := kafkatest.Start(t, kafkatest.Nodes(3))
	t.Logf("broker: %s at %v", cluster.Kind, cluster.Addrs)
	e := newEnv(t, cluster)
	if e.Kafka.ReplicationFactor != 3 || e.Kafka.MinInsyncReplicas != 2 {
		t.Fatalf("env on 3 nodes has replication factor %d and min ISR %d, want 3 and 2", e.Kafka.ReplicationFactor, e.Kafka.MinInsyncReplicas)
	}
	adm := kadm.NewClient(e.Client)
	recv := newReceiver(t)
	const (
		path  = "/broker-loss"
		total = 3000
	)
	ep := createEndpoint(t, e, recv.url(path), 3)
	recv.trust(path, ep)
	topic := e.Kafka.Topics().Endpoint(ep.ID)
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())

	evs := keyedEvents(t, e, "acme", total)
	want := eventIDs(evs)
	start := time.Now()
	pub := startPublisher(t, e, evs, 30, 100*time.Millisecond, 5) // ~10 s
	eventually(t, 60*time.Second, "first deliveries", func() bool { return len(recv.ids(path)) >= total/10 })

	// Every topic of the env (core, endpoint, retry tiers the deliverer
	// created) has RF 3 and its own min.insync.replicas=2.
	checkReplication(t, adm, e.Kafka.Prefix+".")

	victim, victimID, why := pickVictim(t, adm, cluster,
		[]string{e.Kafka.Topics().Events(), topic},
		[]string{e.Kafka.Prefix + "-router", e.Kafka.Prefix + "-deliverer"},
		[]string{e.Kafka.Prefix + "-router"})
	acked, delivered := pub.acked.Load(), len(recv.ids(path))
	stopAt := time.Now()
	cluster.StopNode(t, victim)
	t.Logf("stopped node %d (%s) after %v, with %d of %d events published and %d delivered; the stop took %v",
		victim, why, stopAt.Sub(start).Round(time.Millisecond), acked, total, delivered, time.Since(stopAt).Round(time.Millisecond))
	if pub.isDone() {
		t.Logf("note: the publisher had finished before the node was down")
	}
	waitFailover(t, adm, victimID, e.Kafka.Topics().Events(), topic)

	pub.wait(t, 90*time.Second)
	eventually(t, 120*time.Second, "every event delivered with one node down", func() bool {
		return missing(recv, path, want) == 0
	})
	allAt := time.Since(start)
	dups := 0
	for _, n := range recv.ids(path) {
		dups += n - 1
	}
	t.Logf("RESULT broker loss (%s, 3 nodes): %d events all delivered %v after the first publish, %d duplicate deliveries", cluster.Kind, total, allAt.Round(time.Millisecond), dups)

	restartAt := time.Now()
	cluster.StartNode(t, victim)
	t.Logf("node %d serving again after %v", victim, time.Since(restartAt).Round(time.Millisecond))
	if n := recv.badSig.Load(); n != 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
}

// checkReplication checks every topic whose name starts with prefix: each
// partition has 3 replicas, and the topic sets min.insync.replicas=2 itself
// (not merely inheriting the cluster default, which is also 2 here).
func checkReplication(t *testing.T, adm *kadm.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, td := range tds {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		names = append(names, name)
		for _, p := range td.Partitions {
			if len(p.Replicas) != 3 {
				t.Errorf("%s[%d] has replicas %v, want 3", name, p.Partition, p.Replicas)
			}
		}
	}
	slices.Sort(names)
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("configs of %s: %v", rc.Name, rc.Err)
		}
		var found bool
		for _, c := range rc.Configs {
			if c.Key != "min.insync.replicas" {
				continue
			}
			found = true
			if c.Value == nil || *c.Value != "2" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("%s: min.insync.replicas = %v (source %v), want 2 set on the topic", rc.Name, ptrStr(c.Value), c.Source)
			}
		}
		if !found {
			t.Errorf("%s: no min.insync.replicas in its configs", rc.Name)
		}
	}
	if len(names) < 5 {
		t.Errorf("only %d topics with prefix %q: %v", len(names), prefix, names)
	}
	t.Logf("replication checked on %d topics: %s", len(names), strings.Join(names, ", "))
}

// openOffsets sums, over topic's partitions, how far the high watermark is
// past the last stable offset: > 0 while a transaction is open.
func openOffsets(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	hw, lso := endOffsets(t, adm, topic, false), endOffsets(t, adm, topic, true)
	var n int64
	for p := range hw {
		n += hw[p] - lso[p]
	}
	return n
}

func ptrStr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// pickVictim returns the index (into cluster.Addrs) of the node with the
// most roles in the env: leader of a partition of topics, coordinator of one
// of groups or of one of txnIDs.
func pickVictim(t *testing.T, adm *kadm.Client, cluster *kafkatest.Cluster, topics, groups, txnIDs []string) (index int, id int32, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[int32][]string{}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			roles[p.Leader] = append(roles[p.Leader], fmt.Sprintf("leader of %s[%d]", td.Topic, p.Partition))
		}
	}
	for what, resps := range map[string]kadm.FindCoordinatorResponses{
		"group": adm.FindGroupCoordinators(ctx, groups...),
		"txn":   adm.FindTxnCoordinators(ctx, txnIDs...),
	} {
		for name, r := range resps {
			if r.Err != nil {
				t.Fatalf("finding the coordinator of %s %s: %v", what, name, r.Err)
			}
			roles[r.NodeID] = append(roles[r.NodeID], fmt.Sprintf("%s coordinator of %s", what, name))
		}
	}
	best, bestN := int32(-1), -1
	for _, b := range md.Brokers {
		if n := len(roles[b.NodeID]); n > bestN {
			best, bestN = b.NodeID, n
		}
	}
	for _, b := range md.Brokers {
		if b.NodeID != best {
			continue
		}
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		for i, a := range cluster.Addrs {
			if a == addr {
				slices.Sort(roles[best])
				return i, best, fmt.Sprintf("broker id %d at %s: %s", best, addr, strings.Join(roles[best], ", "))
			}
		}
		t.Fatalf("broker %d at %s is not in the cluster's addresses %v", best, addr, cluster.Addrs)
	}
	t.Fatalf("no broker in metadata %v", md.Brokers)
	return 0, 0, ""
}

// waitFailover waits (up to 30 s, without failing) until no partition of
// topics is led by node id or lists it in its ISR, and logs the outcome.
func waitFailover(t *testing.T, adm *kadm.Client, id int32, topics ...string) {
	t.Helper()
	start := time.Now()
	var state string
	for time.Since(start) < 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		md, err := adm.Metadata(ctx, topics...)
		cancel()
		if err != nil {
			state = err.Error()
			continue
		}
		var b strings.Builder
		moved := true
		for _, name := range md.Topics.Names() {
			for _, p := range md.Topics[name].Partitions.Sorted() {
				fmt.Fprintf(&b, " %s[%d] leader %d isr %v;", name, p.Partition, p.Leader, p.ISR)
				if p.Leader == id || slices.Contains(p.ISR, id) {
					moved = false
				}
			}
		}
		state = b.String()
		if moved {
			t.Logf("%v after the stop, broker %d leads nothing and is out of every ISR:%s", time.Since(start).Round(time.Millisecond), id, state)
			return
		}
	}
	t.Logf("30 s after the stop, broker %d still leads or is in an ISR (metadata lag?):%s", id, state)
}
