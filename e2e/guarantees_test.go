package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/clock"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/pkg/ops"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/producer"
)

// TestGuarantees checks retries, dead letters, breakers and ordering against
// one broker: kfake, or real Kafka with HOOKSTREAM_TEST_BROKER=kafka.
func TestGuarantees(t *testing.T) {
	cluster := kafkatest.Start(t)
	t.Run("RetryFollowsScheduleOnFakeClock", func(t *testing.T) { testRetrySchedule(t, cluster) })
	t.Run("Always400GoesToDLQAfterOneAttempt", func(t *testing.T) { testDLQ400(t, cluster) })
	t.Run("Always500GoesToDLQAfterLastTier", func(t *testing.T) { testDLQ500(t, cluster) })
	t.Run("OpenBreakerSpendsNoAttempts", func(t *testing.T) { testBreaker(t, cluster) })
	t.Run("OrderedEndpointKeepsOrder", func(t *testing.T) { testOrdered(t, cluster) })
	t.Run("StalledBacklogDoesNotStopOthers", func(t *testing.T) { testStalledBacklog(t, cluster) })
	t.Run("RefusedCopyGoesToDLQThenRedrive", func(t *testing.T) { testRefusedCopy(t, cluster) })
}

// testRefusedCopy: an endpoint topic that refuses the router's copies for
// good (max.message.bytes below the records) turns them into dead letters
// (reason unwritable, never attempted) while another endpoint's copies of
// the same events are delivered; once the topic is fixed, dlq redrive
// delivers them.
func testRefusedCopy(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	small := e.addEndpoint(recv.url("/small"), "*")
	recv.trust("/small", small)
	recv.trust("/ok", e.addEndpoint(recv.url("/ok"), "*"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(e.Client)
	topic := e.Kafka.Topics().Endpoint(small.ID)
	setMax := func(v string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr(v)}}, topic)
		if err == nil {
			_, err = rs.On(topic, nil)
		}
		if err != nil {
			t.Fatalf("setting %s's max.message.bytes to %s: %v", topic, v, err)
		}
	}
	setMax("120")
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())
	types, in, _ := samples(t, e)
	sent := publish(t, e, "acme", 10, types, in)
	eventually(t, 60*time.Second, "every event at the other endpoint", func() bool { return len(recv.ids("/ok")) == len(sent) })
	for _, dl := range e.deadLetters(len(sent), 60*time.Second) {
		if dl.Reason != deliverer.ReasonUnwritable || dl.Attempts != 0 || dl.EndpointID != small.ID || sent[dl.EventID] == "" || dl.eventKey != "acme" {
			t.Fatalf("dead letter %+v (event key %q): want reason unwritable, no attempt, endpoint %s, key acme", dl.DeadLetter, dl.eventKey, small.ID)
		}
	}
	if n := len(recv.attempts("/small")); n != 0 {
		t.Fatalf("the refusing endpoint got %d requests, want none", n)
	}

	setMax("1048588")
	rep, err := ops.New(e.Kafka, e.Catalog, e.Registry).Redrive(ctx, ops.RedriveOptions{Filter: ops.DeadLetterFilter{EndpointID: small.ID, Reason: deliverer.ReasonUnwritable}})
	if err != nil || rep.Redriven != len(sent) {
		t.Fatalf("redrive: %+v, %v; want %d redriven", rep, err, len(sent))
	}
	eventually(t, 60*time.Second, "every redriven event at the fixed endpoint", func() bool { return receivedAll(recv, sent, "/small") })
}

// testStalledBacklog fills the deliverer's global queue bound with the
// backlog of an endpoint that never answers, then checks that healthy
// endpoints keep fetching and delivering, round after round: the stalled
// endpoint may keep only its share of the bound.
func testStalledBacklog(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	var stuck atomic.Int64
	release := make(chan struct{})
	hole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stuck.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hole.Close)
	t.Cleanup(func() { close(release) })
	e.CreateEndpoint(registry.Endpoint{TenantID: "stuck", URL: hole.URL + "/hole", EventTypes: []string{"*"}, Partitions: 2})
	recv := newReceiver(t)
	for _, path := range []string{"/a", "/b"} {
		recv.trust(path, e.addEndpoint(recv.url(path), "*"))
	}
	cfg := e.delivererConfig()
	cfg.MaxQueued = 32
	cfg.MaxInFlightPerEndpoint = 2
	cfg.AttemptTimeout = 5 * time.Minute // the black hole holds its slots for the whole test
	e.StartRouter()
	e.StartDeliverer(cfg)
	types, in, _ := samples(t, e)
	publish(t, e, "stuck", 400, types, in)
	eventually(t, 30*time.Second, "the black hole to hold every slot", func() bool { return stuck.Load() == 2 })
	eventually(t, 30*time.Second, "the backlog to fill the global bound", func() bool {
		return gaugeValue(t, e, "hookstream_deliverer_queued_records") >= float64(cfg.MaxQueued)
	})
	for round := range 4 {
		sent := publish(t, e, "acme", 50, types, in)
		eventually(t, 30*time.Second, "round "+strconv.Itoa(round)+" at the healthy endpoints", func() bool { return receivedAll(recv, sent, "/a", "/b") })
	}
	if n := stuck.Load(); n != 2 {
		t.Fatalf("%d requests reached the black hole, want its 2 in-flight slots", n)
	}
}

func statusFor(f func(path string, d delivery) int) *func(string, delivery) int { return &f }

func testRetrySchedule(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/sched"), "*")
	recv.trust("/sched", ep)
	// The first three attempts fail; the fourth succeeds.
	recv.respond.Store(statusFor(func(_ string, d delivery) int {
		if n, _ := strconv.Atoi(d.Attempt); n <= 3 {
			return http.StatusInternalServerError
		}
		return 0
	}))
	fake := clock.NewFake(time.Now())
	cfg := e.delivererConfig()
	cfg.Clock = fake
	cfg.Schedule = deliverer.Schedule{10 * time.Second, 30 * time.Second, 60 * time.Second}
	cfg.BreakerFailures = 1000 // this test is about the schedule, not the breaker
	e.StartRouter()
	e.StartDeliverer(cfg)
	types, in, _ := samples(t, e)
	publish(t, e, "acme", 1, types[:1], in)

	eventually(t, 30*time.Second, "the first attempt", func() bool { return len(recv.attempts("/sched")) == 1 })
	for k, delay := range cfg.Schedule {
		// The failed attempt is in its retry tier and the tier's consumer
		// holds it until due: nothing may happen before 80 % of the delay.
		eventually(t, 30*time.Second, "the retry to wait for its due time", func() bool { return fake.Waiters() > 0 })
		fake.Advance(delay * 79 / 100)
		time.Sleep(200 * time.Millisecond) // a negative check: give a wrong early attempt the chance to show
		if n := len(recv.attempts("/sched")); n != k+1 {
			t.Fatalf("retry %d came before 80%% of its %v delay (%d attempts)", k+1, delay, n)
		}
		fake.Advance(delay * 42 / 100) // now past 120 %: due whatever the jitter
		eventually(t, 30*time.Second, "retry "+strconv.Itoa(k+1), func() bool { return len(recv.attempts("/sched")) == k+2 })
		a := recv.attempts("/sched")
		prev, _ := strconv.ParseInt(a[k].Timestamp, 10, 64)
		cur, _ := strconv.ParseInt(a[k+1].Timestamp, 10, 64)
		gap := time.Duration(cur-prev) * time.Second
		if gap < delay*8/10-time.Second || gap > delay*121/100+time.Second {
			t.Fatalf("retry %d came %v after the previous attempt, want %v ±20%%", k+1, gap, delay)
		}
		if a[k+1].Attempt != strconv.Itoa(k+2) || a[k+1].ID != a[0].ID {
			t.Fatalf("retry %d: webhook-attempt %s, webhook-id %s; want %d and %s", k+1, a[k+1].Attempt, a[k+1].ID, k+2, a[0].ID)
		}
	}
	if got := recv.deliveries("/sched"); len(got) != 1 || got[0].Attempt != "4" {
		t.Fatalf("want one successful delivery at attempt 4, got %+v", got)
	}
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("%d dead letters for an event that was delivered", n)
	}
}

func testDLQ400(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/bad"), "*")
	recv.trust("/bad", ep)
	recv.respond.Store(statusFor(func(string, delivery) int { return http.StatusBadRequest }))
	e.StartRouter()
	e.StartDeliverer(e.delivererConfig())
	types, in, _ := samples(t, e)
	sent := publish(t, e, "acme", 20, types, in)
	dls := e.deadLetters(20, 60*time.Second)
	for _, dl := range dls {
		if dl.Reason != deliverer.ReasonRejected || dl.Attempts != 1 || dl.LastStatus != 400 || dl.EndpointID != ep.ID {
			t.Fatalf("dead letter %+v: want reason rejected after 1 attempt with status 400", dl)
		}
		if sent[dl.EventID] != dl.EventType || dl.TenantID != "acme" || dl.eventKey != "acme" || dl.ResponseBody == "" || dl.LastError == "" {
			t.Fatalf("dead letter does not describe its event and answer: %+v", dl)
		}
		env, err := e.Catalog.DecodeEnvelope(dl.Envelope)
		if err != nil || env.ID != dl.EventID {
			t.Fatalf("dead letter envelope: %v %v", env, err)
		}
	}
	if n := len(recv.attempts("/bad")); n != 20 {
		t.Fatalf("receiver got %d requests for 20 events answered 400, want exactly 20", n)
	}
}

func testDLQ500(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/down"), "*")
	recv.trust("/down", ep)
	recv.respond.Store(statusFor(func(string, delivery) int { return http.StatusInternalServerError }))
	cfg := e.delivererConfig()
	cfg.Schedule = deliverer.Schedule{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond}
	cfg.BreakerFailures = 1_000_000 // every attempt must be made
	e.StartRouter()
	e.StartDeliverer(cfg)
	types, in, _ := samples(t, e)
	// Each event under a key of its own: the retry tiers key their records
	// by endpoint, and the event's key must still reach its dead letter
	// (a redrive writes the event back under it).
	evs := make([]producer.Event, 10)
	for i := range evs {
		evs[i] = producer.Event{Type: types[i%len(types)], TenantID: "acme", Key: "order-" + strconv.Itoa(i), Data: in[types[i%len(types)]]}
	}
	keyOf := map[string]string{}
	for i, id := range publishEvents(t, e, evs) {
		keyOf[id] = evs[i].Key
	}
	for _, dl := range e.deadLetters(10, 60*time.Second) {
		if dl.Reason != deliverer.ReasonExhausted || dl.Attempts != 4 || dl.LastStatus != 500 {
			t.Fatalf("dead letter %+v: want reason exhausted after 4 attempts (1 + 3 retries) with status 500", dl)
		}
		if dl.eventKey != keyOf[dl.EventID] {
			t.Fatalf("dead letter of %s carries event key %q, want %q", dl.EventID, dl.eventKey, keyOf[dl.EventID])
		}
		if !dl.LastAttemptAt.After(dl.FirstAttemptAt) {
			t.Fatalf("dead letter times: first %v, last %v", dl.FirstAttemptAt, dl.LastAttemptAt)
		}
	}
	if n := len(recv.attempts("/down")); n != 40 {
		t.Fatalf("receiver got %d requests, want 40 (10 events × 4 attempts)", n)
	}
}

func testBreaker(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.addEndpoint(recv.url("/flap"), "*")
	recv.trust("/flap", ep)
	var down atomic.Bool
	down.Store(true)
	recv.respond.Store(statusFor(func(string, delivery) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}))
	cfg := e.delivererConfig()
	cfg.BreakerFailures = 3
	cfg.BreakerOpenTimeout = 300 * time.Millisecond
	cfg.MaxInFlightPerPartition = 4
	e.StartRouter()
	e.StartDeliverer(cfg)
	types, in, _ := samples(t, e)
	sent := publish(t, e, "acme", 100, types, in)

	eventually(t, 30*time.Second, "the breaker to open", func() bool {
		return counterValue(t, e, "hookstream_deliverer_breaker_transitions_total", "state", "open") >= 1
	})
	// Let it stay down for several open periods: only probes may go out.
	eventually(t, 30*time.Second, "a few half-open probes", func() bool {
		return counterValue(t, e, "hookstream_deliverer_breaker_transitions_total", "state", "half-open") >= 3
	})
	recv.mu.Lock()
	failing := len(recv.tried["/flap"])
	down.Store(false)
	recv.mu.Unlock()
	if failing >= 40 {
		t.Fatalf("%d attempts while the endpoint was down behind an open breaker; want only the first few and the probes", failing)
	}
	eventually(t, 60*time.Second, "every event after recovery", func() bool { return receivedAll(recv, sent, "/flap") })
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("an open breaker sent %d events to the dead-letter topic", n)
	}
	t.Logf("%d attempts while down (breaker open), then all %d events delivered", failing, len(sent))
}

func testOrdered(t *testing.T, cluster *kafkatest.Cluster) {
	e := newEnv(t, cluster)
	recv := newReceiver(t)
	ep := e.CreateEndpoint(registry.Endpoint{TenantID: "acme", URL: recv.url("/ordered"), EventTypes: []string{"*"}, Ordered: true})
	recv.trust("/ordered", ep)
	cfg := e.delivererConfig()
	cfg.Schedule = deliverer.Schedule{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	types, in, _ := samples(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for i := 0; i < 10; i++ {
		id, err := e.Producer.Publish(ctx, producer.Event{Type: types[i%len(types)], TenantID: "acme", Key: "order-42", Data: json.RawMessage(in[types[i%len(types)]])})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Event 3 fails its first three attempts.
	recv.respond.Store(statusFor(func(_ string, d delivery) int {
		if n, _ := strconv.Atoi(d.Attempt); d.ID == ids[2] && n <= 3 {
			return http.StatusInternalServerError
		}
		return 0
	}))
	e.StartRouter()
	e.StartDeliverer(cfg)
	eventually(t, 60*time.Second, "all ten ordered events", func() bool { return len(recv.deliveries("/ordered")) >= 10 })
	got := recv.deliveries("/ordered")
	for i, d := range got {
		if i >= len(ids) || d.ID != ids[i] {
			var order []string
			for _, g := range got {
				order = append(order, g.ID[len(g.ID)-4:])
			}
			t.Fatalf("delivery %d is %s; want the events in publish order, got %v", i, d.ID, order)
		}
	}
	if got[2].Attempt != "4" {
		t.Fatalf("event 3 succeeded at attempt %s, want 4", got[2].Attempt)
	}
	// Nothing behind event 3 was tried before it succeeded.
	tried := recv.attempts("/ordered")
	okAt := -1
	for i, d := range tried {
		if d.ID == ids[2] && d.Status < 300 {
			okAt = i
		}
	}
	for i, d := range tried {
		for _, later := range ids[3:] {
			if d.ID == later && i < okAt {
				t.Fatalf("event %s was attempted before event 3 succeeded", later)
			}
		}
	}
}
