package deliverer

import (
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/hookstream/hookstream/pkg/clock"
	"github.com/hookstream/hookstream/pkg/registry"
)

var epNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func activeEndpoint(id string) *registry.Endpoint {
	return &registry.Endpoint{ID: id, TenantID: "t1", URL: "http://127.0.0.1:1/", Status: registry.StatusActive}
}

var refusalNames = map[refusal]string{
	admitted: "admitted", refusedDisabled: "disabled", refusedBreaker: "breaker", refusedInFlight: "in-flight", refusedRate: "rate",
}

// mustAdmit admits one attempt at now or fails the test.
func mustAdmit(t *testing.T, es *endpointState, ep *registry.Endpoint, now time.Time) func(error) {
	t.Helper()
	done, why, _ := es.admit(ep, now)
	if why != admitted || done == nil {
		t.Fatalf("admit at %v refused: %s", now.Sub(epNow), refusalNames[why])
	}
	return done
}

func mustRefuse(t *testing.T, es *endpointState, ep *registry.Endpoint, now time.Time, want refusal) time.Time {
	t.Helper()
	done, why, at := es.admit(ep, now)
	if why != want || done != nil {
		t.Fatalf("admit at %v = %s, want refused (%s)", now.Sub(epNow), refusalNames[why], refusalNames[want])
	}
	return at
}

func TestAdmitRefusesInactiveEndpoints(t *testing.T) {
	d := newTestDeliverer(t, nil)
	es := d.endpoint("ep_1")
	for _, status := range []string{registry.StatusDisabled, registry.StatusDeleted, ""} {
		ep := activeEndpoint("ep_1")
		ep.Status = status
		if at := mustRefuse(t, es, ep, epNow, refusedDisabled); !at.IsZero() {
			t.Errorf("status %q: retry at %v, want zero (wait for a change)", status, at)
		}
	}
	if es.inflight != 0 {
		t.Errorf("refusals counted %d in flight", es.inflight)
	}
}

func TestAdmitMaxInFlight(t *testing.T) {
	d := newTestDeliverer(t, func(c *Config) { c.MaxInFlightPerEndpoint = 3 })
	// The endpoint's own limit wins.
	ep := activeEndpoint("ep_1")
	ep.MaxInFlight = 2
	es := d.endpoint("ep_1")
	d1 := mustAdmit(t, es, ep, epNow)
	d2 := mustAdmit(t, es, ep, epNow)
	if at := mustRefuse(t, es, ep, epNow, refusedInFlight); !at.IsZero() {
		t.Errorf("in-flight refusal retry at %v, want zero (wait for a release)", at)
	}
	changed := es.changedCh()
	es.release(d1, nil, epNow)
	select {
	case <-changed:
	default:
		t.Error("release did not notify the endpoint's waiters")
	}
	d3 := mustAdmit(t, es, ep, epNow)
	mustRefuse(t, es, ep, epNow, refusedInFlight)
	es.release(d2, nil, epNow)
	es.release(d3, nil, epNow)

	// 0 = the deliverer's limit.
	ep2 := activeEndpoint("ep_2")
	es2 := d.endpoint("ep_2")
	for range 3 {
		mustAdmit(t, es2, ep2, epNow)
	}
	mustRefuse(t, es2, ep2, epNow, refusedInFlight)
	if es2.inflight != 3 {
		t.Errorf("in flight = %d, want 3", es2.inflight)
	}
}

func TestEndpointStateIsShared(t *testing.T) {
	d := newTestDeliverer(t, nil)
	first := d.endpoint("ep_1")
	if again := d.endpoint("ep_1"); again != first {
		t.Error("two calls for one endpoint returned different states")
	}
	if d.endpoint("ep_2") == first {
		t.Error("two endpoints share a state")
	}
}

func TestAdmitTokenBucket(t *testing.T) {
	d := newTestDeliverer(t, nil)
	ep := activeEndpoint("ep_1")
	ep.RateLimit = 2 // per second, burst 2
	es := d.endpoint("ep_1")

	release := func(es *endpointState, done func(error)) { es.release(done, nil, epNow) }
	release(es, mustAdmit(t, es, ep, epNow)) // the burst
	release(es, mustAdmit(t, es, ep, epNow))
	if at := mustRefuse(t, es, ep, epNow, refusedRate); !at.Equal(epNow.Add(500 * time.Millisecond)) {
		t.Errorf("rate refusal: retry at +%v, want +500ms (one token at 2/s)", at.Sub(epNow))
	}
	t1 := epNow.Add(250 * time.Millisecond) // half a token
	if at := mustRefuse(t, es, ep, t1, refusedRate); !at.Equal(epNow.Add(500 * time.Millisecond)) {
		t.Errorf("rate refusal at +250ms: retry at +%v, want +500ms", at.Sub(epNow))
	}
	t2 := epNow.Add(500 * time.Millisecond)
	release(es, mustAdmit(t, es, ep, t2))
	mustRefuse(t, es, ep, t2, refusedRate)

	// A long idle period refills up to the burst, not beyond.
	t3 := t2.Add(time.Hour)
	release(es, mustAdmit(t, es, ep, t3))
	release(es, mustAdmit(t, es, ep, t3))
	mustRefuse(t, es, ep, t3, refusedRate)

	// A rate below one per second still has a burst of one.
	slow := activeEndpoint("ep_slow")
	slow.RateLimit = 0.5
	ess := d.endpoint("ep_slow")
	release(ess, mustAdmit(t, ess, slow, epNow))
	if at := mustRefuse(t, ess, slow, epNow, refusedRate); !at.Equal(epNow.Add(2 * time.Second)) {
		t.Errorf("0.5/s: retry at +%v, want +2s", at.Sub(epNow))
	}
	release(ess, mustAdmit(t, ess, slow, epNow.Add(2*time.Second)))

	// No rate limit: no bucket.
	free := activeEndpoint("ep_free")
	esf := d.endpoint("ep_free")
	for range 100 {
		release(esf, mustAdmit(t, esf, free, epNow))
	}
}

// An in-flight refusal does not spend a token.
func TestAdmitInFlightRefusalKeepsTokens(t *testing.T) {
	d := newTestDeliverer(t, nil)
	ep := activeEndpoint("ep_1")
	ep.RateLimit, ep.MaxInFlight = 2, 1
	es := d.endpoint("ep_1")
	done := mustAdmit(t, es, ep, epNow)
	mustRefuse(t, es, ep, epNow, refusedInFlight)
	es.release(done, nil, epNow)
	mustAdmit(t, es, ep, epNow) // the second token of the burst
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	fake := clock.NewFake(epNow)
	d := newTestDeliverer(t, func(c *Config) {
		c.BreakerFailures = 3
		c.BreakerOpenTimeout = time.Hour // never half-opens during the test
		c.Clock = fake
	})
	ep := activeEndpoint("ep_1")
	es := d.endpoint("ep_1")

	// A success in between resets the streak.
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	es.release(mustAdmit(t, es, ep, epNow), nil, epNow)
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	if st := es.cb.State(); st != gobreaker.StateClosed {
		t.Fatalf("breaker %v after 2 consecutive failures, want closed", st)
	}
	changed := es.changedCh()
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	if st := es.cb.State(); st != gobreaker.StateOpen {
		t.Fatalf("breaker %v after 3 consecutive failures, want open", st)
	}
	select {
	case <-changed:
	default:
		t.Error("the failing release did not notify")
	}
	// gobreaker times the open state on the wall clock, so the refusal
	// names no Clock time: waiters are woken by the breaker's own timer.
	if at := mustRefuse(t, es, ep, epNow, refusedBreaker); !at.IsZero() {
		t.Errorf("breaker refusal: retry at %v, want zero (woken by notify)", at)
	}
	if es.inflight != 0 {
		t.Errorf("in flight = %d after every release", es.inflight)
	}
	// Other endpoints are not affected.
	mustAdmit(t, d.endpoint("ep_2"), activeEndpoint("ep_2"), epNow)
}

func TestThrottledOutcomesDoNotCount(t *testing.T) {
	d := newTestDeliverer(t, func(c *Config) { c.BreakerFailures = 2; c.BreakerOpenTimeout = time.Hour })
	ep := activeEndpoint("ep_1")
	es := d.endpoint("ep_1")
	for range 10 {
		if fs := es.release(mustAdmit(t, es, ep, epNow), errThrottled, epNow); !fs.IsZero() {
			t.Fatalf("a throttled outcome started a failure streak at %v", fs)
		}
	}
	if st := es.cb.State(); st != gobreaker.StateClosed {
		t.Fatalf("breaker %v after 10 throttled outcomes, want closed", st)
	}
	// Nor does a throttle break a failure streak.
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	es.release(mustAdmit(t, es, ep, epNow), errThrottled, epNow)
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	if st := es.cb.State(); st != gobreaker.StateOpen {
		t.Errorf("breaker %v after failure, throttle, failure (BreakerFailures 2), want open", st)
	}
}

func TestFailingSince(t *testing.T) {
	d := newTestDeliverer(t, nil) // BreakerFailures 5: stays closed here
	ep := activeEndpoint("ep_1")
	es := d.endpoint("ep_1")
	t1, t2, t3, t4 := epNow, epNow.Add(time.Minute), epNow.Add(2*time.Minute), epNow.Add(3*time.Minute)
	if fs := es.release(mustAdmit(t, es, ep, t1), errFailed, t1); !fs.Equal(t1) {
		t.Errorf("first failure: failingSince %v, want %v", fs, t1)
	}
	if fs := es.release(mustAdmit(t, es, ep, t2), errThrottled, t2); !fs.Equal(t1) {
		t.Errorf("throttled: failingSince %v, want still %v", fs, t1)
	}
	if fs := es.release(mustAdmit(t, es, ep, t3), errFailed, t3); !fs.Equal(t1) {
		t.Errorf("second failure: failingSince %v, want the streak's start %v", fs, t1)
	}
	if fs := es.release(mustAdmit(t, es, ep, t4), nil, t4); !fs.IsZero() {
		t.Errorf("success: failingSince %v, want zero", fs)
	}
	if fs := es.release(mustAdmit(t, es, ep, t4), errFailed, t4); !fs.Equal(t4) {
		t.Errorf("a new streak: failingSince %v, want %v", fs, t4)
	}

	// startDisabling is granted once per streak; doneDisabling resets it.
	if !es.startDisabling() || es.startDisabling() {
		t.Error("startDisabling granted other than exactly once")
	}
	es.doneDisabling()
	if !es.failingSince.IsZero() {
		t.Error("doneDisabling kept the failure streak")
	}
	if !es.startDisabling() {
		t.Error("startDisabling refused after doneDisabling")
	}
}

// After BreakerOpenTimeout the breaker lets exactly one probe through; its
// success closes the breaker. gobreaker measures the timeout on the wall
// clock; the test waits for the endpoint's notification that it may.
func TestBreakerHalfOpenProbe(t *testing.T) {
	const openFor = 30 * time.Millisecond
	d := newTestDeliverer(t, func(c *Config) { c.BreakerFailures = 1; c.BreakerOpenTimeout = openFor })
	ep := activeEndpoint("ep_1")
	es := d.endpoint("ep_1")
	changed := es.changedCh()
	es.release(mustAdmit(t, es, ep, epNow), errFailed, epNow)
	if es.cb.State() != gobreaker.StateOpen {
		t.Fatal("breaker not open after one failure with BreakerFailures 1")
	}
	<-changed // the release's notify
	// The breaker notifies again once it may half-open.
	select {
	case <-es.changedCh():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after BreakerOpenTimeout")
	}
	// gobreaker's expiry was set before the notifying timer started: the
	// probe goes through now.
	probe := mustAdmit(t, es, ep, time.Now())
	if st := es.cb.State(); st != gobreaker.StateHalfOpen {
		t.Errorf("breaker %v with the probe out, want half-open", st)
	}
	if at := mustRefuse(t, es, ep, time.Now(), refusedBreaker); !at.IsZero() {
		t.Errorf("second admit in half-open: retry at %v, want zero (wait for the probe)", at)
	}
	es.release(probe, nil, time.Now())
	if st := es.cb.State(); st != gobreaker.StateClosed {
		t.Errorf("breaker %v after a successful probe, want closed", st)
	}
	mustAdmit(t, es, ep, time.Now())
	mustAdmit(t, es, ep, time.Now())
}

// A channel from changedCh is closed by the next notify, and the one after
// it is new and open; a notify with nobody waiting allocates nothing (it
// runs after every attempt).
func TestNotify(t *testing.T) {
	d := newTestDeliverer(t, nil)
	es := d.endpoint("ep_1")
	first := es.changedCh()
	if again := es.changedCh(); again != first {
		t.Fatal("changedCh handed out two channels before a notify")
	}
	es.notify()
	select {
	case <-first:
	default:
		t.Fatal("notify did not close the channel handed out before it")
	}
	second := es.changedCh()
	select {
	case <-second:
		t.Fatal("changedCh after a notify returned a closed channel")
	default:
	}
	es.notify()
	if allocs := testing.AllocsPerRun(100, es.notify); allocs != 0 {
		t.Errorf("notify with nobody waiting: %v allocations, want 0", allocs)
	}
}

func BenchmarkAdmitRelease(b *testing.B) {
	d := newTestDeliverer(b, nil)
	es, ep := d.endpoint("ep_1"), activeEndpoint("ep_1")
	b.ReportAllocs()
	for b.Loop() {
		done, why, _ := es.admit(ep, epNow)
		if why != admitted {
			b.Fatal(refusalNames[why])
		}
		es.release(done, nil, epNow)
	}
}
