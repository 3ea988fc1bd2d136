package deliverer

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/hookstream/hookstream/pkg/registry"
)

// endpointState is what the deliverer knows about one endpoint across all
// the partitions (endpoint topic and retry tiers) it reads: its circuit
// breaker, its in-flight count and token bucket, how long it has been
// failing, and which partitions wait for it to admit more work.
type endpointState struct {
	id string
	d  *Deliverer
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu           sync.Mutex
	inflight     int
	tokens       float64
	tokensAt     time.Time
	failingSince time.Time // first failure since the last success; zero = healthy
	disabling    bool
	waiters      map[*partition]struct{}
	changed      chan struct{} // closed at the next notify; nil until someone waits on it
}

// errThrottled marks an attempt answered 429: it does not count as a
// breaker failure (the endpoint is alive, only busy).
var errThrottled = errors.New("throttled")

func (d *Deliverer) endpoint(id string) *endpointState {
	if v, ok := d.eps.Load(id); ok {
		return v.(*endpointState)
	}
	es := &endpointState{id: id, d: d, waiters: map[*partition]struct{}{}}
	es.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        id,
		MaxRequests: 1, // half-open lets one probe through
		Timeout:     d.cfg.BreakerOpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(d.cfg.BreakerFailures)
		},
		IsExcluded:    func(err error) bool { return errors.Is(err, errThrottled) },
		OnStateChange: es.stateChanged,
	})
	v, _ := d.eps.LoadOrStore(id, es)
	return v.(*endpointState)
}

// stateChanged is called by gobreaker with its lock held, possibly from
// inside admit (which holds es.mu): it must not take es.mu.
func (es *endpointState) stateChanged(_ string, from, to gobreaker.State) {
	es.d.m.breakerTransitions.WithLabelValues(to.String()).Inc()
	switch to {
	case gobreaker.StateOpen:
		es.d.m.breakersOpen.Inc()
		es.d.log.Warn("deliverer: circuit breaker opened; pausing the endpoint", "endpoint", es.id)
		// gobreaker moves to half-open lazily: wake the waiters when it may.
		go func() {
			select {
			case <-time.After(es.d.cfg.BreakerOpenTimeout):
				es.notify()
			case <-es.d.soft.Done():
			}
		}()
	case gobreaker.StateClosed:
		es.d.log.Info("deliverer: circuit breaker closed; endpoint resumed", "endpoint", es.id)
	}
	if from == gobreaker.StateOpen {
		es.d.m.breakersOpen.Dec()
	}
}

// refusal says why an endpoint does not take more work now.
type refusal int

const (
	admitted refusal = iota
	refusedDisabled
	refusedBreaker
	refusedInFlight
	refusedRate
)

// admit asks whether the endpoint takes one more attempt now. On success it
// counts the attempt in flight and returns the breaker's completion
// function, which release must be given. On refusal it returns when to ask
// again (zero: when notified).
func (es *endpointState) admit(ep *registry.Endpoint, now time.Time) (done func(error), why refusal, retryAt time.Time) {
	if ep.Status != registry.StatusActive {
		return nil, refusedDisabled, time.Time{}
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	maxIn := int(ep.MaxInFlight)
	if maxIn <= 0 {
		maxIn = es.d.cfg.MaxInFlightPerEndpoint
	}
	if es.inflight >= maxIn {
		return nil, refusedInFlight, time.Time{}
	}
	if st := es.cb.State(); st == gobreaker.StateOpen {
		// gobreaker times the open state on the wall clock; the waiters
		// are woken by stateChanged's timer, not by a Clock-based wake.
		return nil, refusedBreaker, time.Time{}
	}
	if r := ep.RateLimit; r > 0 {
		burst := max(1, r)
		if es.tokensAt.IsZero() {
			es.tokens = burst
		} else {
			es.tokens = min(burst, es.tokens+now.Sub(es.tokensAt).Seconds()*r)
		}
		es.tokensAt = now
		if es.tokens < 1 {
			wait := time.Duration((1 - es.tokens) / r * float64(time.Second))
			return nil, refusedRate, now.Add(wait)
		}
	}
	done, err := es.cb.Allow()
	if err != nil { // open, or half-open with its probe already out
		return nil, refusedBreaker, time.Time{}
	}
	if ep.RateLimit > 0 {
		es.tokens--
	}
	es.inflight++
	return done, admitted, time.Time{}
}

// release ends an admitted attempt: it reports the outcome to the breaker
// (nil = the endpoint answered), tracks the failure streak, and wakes the
// partitions waiting for the endpoint. It returns when the current failure
// streak began (zero if the endpoint is healthy).
func (es *endpointState) release(done func(error), outcome error, now time.Time) (failingSince time.Time) {
	done(outcome)
	es.mu.Lock()
	es.inflight--
	switch {
	case outcome == nil:
		es.failingSince = time.Time{}
	case errors.Is(outcome, errThrottled):
	case es.failingSince.IsZero():
		es.failingSince = now
	}
	failingSince = es.failingSince
	es.mu.Unlock()
	es.notify()
	return failingSince
}

// wait registers p to be pumped when the endpoint may admit again.
func (es *endpointState) wait(p *partition) {
	es.mu.Lock()
	es.waiters[p] = struct{}{}
	es.mu.Unlock()
}

// changedCh returns a channel closed at the next notify.
func (es *endpointState) changedCh() <-chan struct{} {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.changed == nil {
		es.changed = make(chan struct{})
	}
	return es.changed
}

// notify wakes everything waiting for the endpoint. It must be called
// without holding any partition lock.
//
// It runs after every attempt, so it allocates nothing when nobody waits
// (the usual case): the waiter set is swapped only when it has members,
// and the channel exists only once changedCh has handed it out.
func (es *endpointState) notify() {
	es.mu.Lock()
	var ws map[*partition]struct{}
	if len(es.waiters) > 0 {
		ws = es.waiters
		es.waiters = make(map[*partition]struct{}, len(ws))
	}
	if es.changed != nil {
		close(es.changed)
		es.changed = nil
	}
	es.mu.Unlock()
	for p := range ws {
		p.pump()
	}
}

// startDisabling reports true once per failure streak, for the caller that
// disables the endpoint.
func (es *endpointState) startDisabling() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.disabling {
		return false
	}
	es.disabling = true
	return true
}

func (es *endpointState) doneDisabling() {
	es.mu.Lock()
	es.disabling = false
	es.failingSince = time.Time{}
	es.mu.Unlock()
}
