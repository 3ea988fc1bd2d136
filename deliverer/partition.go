package deliverer

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/offsets"
	"github.com/hookstream/hookstream/pkg/registry"
)

// partition is the delivery state of one assigned partition: of an
// endpoint topic (one endpoint, first attempts) or of a retry tier (many
// endpoints, later attempts, each due at a time). It holds jobs fetched but
// not started, counts those in flight, and tracks how far the commit may go.
type partition struct {
	d          *Deliverer
	tp         topicPartition
	endpointID string        // "" for a retry tier
	tier       time.Duration // retry tier delay; 0 for an endpoint topic

	mu        sync.Mutex
	tr        *offsets.Tracker
	queue     []*job // fetched, not started; nil where started; queue[head:] is live
	head      int
	waiting   int // non-nil entries in queue
	inflight  int
	retrying  int            // ordered endpoint: in-flight jobs retrying in place
	keys      map[string]int // ordered endpoint: keys in flight
	paused    bool           // fetching paused because the queue is full
	draining  bool           // revoked or lost: start nothing new
	gone      bool           // forgotten: settle nothing more
	idle      chan struct{}  // closed when inflight reaches 0 while draining
	committed int64          // last offset committed, -1 = none
	wakeAt    time.Time      // a pump is scheduled for then
}

func newPartition(d *Deliverer, tp topicPartition, endpointID string, tier time.Duration) *partition {
	return &partition{d: d, tp: tp, endpointID: endpointID, tier: tier, tr: offsets.NewTracker(), committed: -1, keys: map[string]int{}}
}

func (p *partition) mixed() bool { return p.endpointID == "" }

func (p *partition) enqueue(recs []*kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return
	}
	now := time.Now()
	for _, r := range recs {
		if p.tier == 0 {
			p.d.m.fetchDelay.Observe(now.Sub(r.Timestamp).Seconds())
		}
		p.tr.Add(r.Offset, r.LeaderEpoch)
		p.queue = append(p.queue, newJob(r, p.endpointID))
	}
	p.waiting += len(recs)
	p.d.queued.Add(int64(len(recs)))
	p.d.m.queued.Add(float64(len(recs)))
	p.pumpLocked()
}

func (p *partition) pump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pumpLocked()
}

// action is what a started job does.
type action int

const (
	actDeliver action = iota // attempt delivery
	actDrop                  // the endpoint is deleted: settle without sending
	actRepark                // retry tier, endpoint paused: write back to the tier, attempts untouched
)

// pumpLocked starts every job that is due and admitted, in offset order
// (retry-tier jobs not yet due are skipped; the partition wakes at the
// earliest due time, and a full queue pauses its fetching).
// On an endpoint topic the first job that cannot start holds back the rest
// (they are the same endpoint's). On a retry tier a job whose endpoint is
// busy is skipped, and one whose endpoint is paused (breaker open, disabled)
// is written back to the tier, so one endpoint never holds up the others.
func (p *partition) pumpLocked() {
	if p.draining || p.d.stopping.Load() {
		return
	}
	now := p.d.cfg.Clock.Now()
	var ep *registry.Endpoint
	var ok bool
	if !p.mixed() {
		ep, ok = p.d.reg.Get(p.endpointID)
	}
	ordered := ok && ep.Ordered
	var blocked map[string]bool
	for i := p.head; i < len(p.queue) && p.inflight < p.d.cfg.MaxInFlightPerPartition; i++ {
		j := p.queue[i]
		if j == nil {
			continue
		}
		if ordered && p.retrying > 0 {
			break // a failing event holds back everything behind it
		}
		if !j.due.IsZero() && j.due.After(now) {
			// Not due yet. Records of a tier come roughly in due order,
			// but jitter and write-backs make it rough: look further.
			p.wake(j.due)
			continue
		}
		jep, jok := ep, ok
		if p.mixed() {
			jep, jok = p.d.reg.Get(j.endpointID)
		}
		if !jok || jep.Status == registry.StatusDeleted {
			p.startLocked(i, j, nil, nil, actDrop, nil)
			continue
		}
		if ordered {
			if blocked[j.key] || p.keys[j.key] > 0 {
				if blocked == nil {
					blocked = map[string]bool{}
				}
				blocked[j.key] = true // later events of this key stay behind
				continue
			}
		}
		if !p.d.budget.available(p) {
			break // pumped again when a slot comes free
		}
		es := p.d.endpoint(j.endpointID)
		done, why, at := es.admit(jep, now)
		if why != admitted {
			if p.mixed() && (why == refusedBreaker || why == refusedDisabled) {
				p.startLocked(i, j, es, nil, actRepark, nil)
				continue
			}
			es.wait(p)
			if !at.IsZero() {
				p.wake(at)
			}
			if p.mixed() {
				continue
			}
			break
		}
		if ordered {
			p.keys[j.key]++
		}
		p.startLocked(i, j, es, done, actDeliver, p.d.budget.take())
	}
	for p.head < len(p.queue) && p.queue[p.head] == nil {
		p.head++
	}
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	} else if p.head > 1024 && p.head*2 > len(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	// Fetching pauses when the queue reaches the partition's cap and resumes
	// at half of it. The cap is MaxQueuedPerPartition, lowered to a fair
	// share of MaxQueued while the deliverer as a whole holds more than
	// MaxQueued: a partition that cannot start anything (breaker open, black
	// hole at its in-flight bound) then keeps only its share, and every
	// other partition keeps fetching.
	limit := p.d.queueLimit()
	switch {
	case !p.paused && p.waiting >= limit:
		p.paused = true
		p.d.pause.set(p.tp, true)
	case p.paused && p.waiting <= limit/2 && !(ok && ep.Status == registry.StatusDisabled):
		p.paused = false
		p.d.pause.set(p.tp, false)
	}
}

// startLocked runs job i; sl is its slot of the deliverer's in-flight
// budget (nil for jobs that send nothing).
func (p *partition) startLocked(i int, j *job, es *endpointState, done func(error), act action, sl *slot) {
	p.queue[i] = nil
	p.waiting--
	p.d.queued.Add(-1)
	p.inflight++
	p.d.jobs.add(1)
	p.d.m.queued.Dec()
	p.d.m.inflight.Inc()
	p.d.workers.do(func() { p.run(j, es, done, act, sl) })
}

// wake schedules a pump at t unless one is scheduled no later.
func (p *partition) wake(t time.Time) {
	if !p.wakeAt.IsZero() && !p.wakeAt.After(t) {
		return
	}
	p.wakeAt = t
	wait := t.Sub(p.d.cfg.Clock.Now())
	go func() {
		select {
		case <-p.d.cfg.Clock.After(wait):
		case <-p.d.soft.Done():
			return
		}
		p.mu.Lock()
		if p.wakeAt.Equal(t) {
			p.wakeAt = time.Time{}
		}
		p.pumpLocked()
		p.mu.Unlock()
	}()
}

func (p *partition) run(j *job, es *endpointState, done func(error), act action, sl *slot) {
	settled := p.d.process(p, j, es, done, act)
	if sl != nil {
		sl.release()
	}
	p.mu.Lock()
	p.inflight--
	if n, ok := p.keys[j.key]; ok && act == actDeliver && !p.mixed() {
		if n <= 1 {
			delete(p.keys, j.key)
		} else {
			p.keys[j.key] = n - 1
		}
	}
	if settled && !p.gone {
		p.tr.Settle(j.rec.Offset)
	}
	if p.inflight == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	p.pumpLocked()
	p.mu.Unlock()
	p.d.m.inflight.Dec()
	p.d.jobs.add(-1)
}

// setRetrying counts an ordered job retrying in place (delta +1 when it
// starts retrying, -1 when it is settled).
func (p *partition) setRetrying(delta int) {
	p.mu.Lock()
	p.retrying += delta
	p.mu.Unlock()
}

// drain stops new attempts and drops the queue (those records were never
// started and are not committed, so the next owner delivers them). It returns
// a channel closed when in-flight attempts are done, or nil if none are.
func (p *partition) drain() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = true
	p.d.queued.Add(-int64(p.waiting))
	p.d.m.queued.Sub(float64(p.waiting))
	clear(p.queue)
	p.queue, p.head, p.waiting = nil, 0, 0
	if p.inflight == 0 {
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// forget makes late settlements no-ops: the partition belongs to another
// member now, and committing for it would be wrong.
func (p *partition) forget() {
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
}

// toCommit returns the offset to commit if it advanced since the last commit.
func (p *partition) toCommit() (kgo.EpochOffset, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return kgo.EpochOffset{}, false
	}
	off, epoch, ok := p.tr.Committable()
	if !ok || off <= p.committed {
		return kgo.EpochOffset{}, false
	}
	return kgo.EpochOffset{Epoch: epoch, Offset: off}, true
}

func (p *partition) committedTo(off int64) {
	p.mu.Lock()
	if off > p.committed {
		p.committed = off
	}
	p.mu.Unlock()
}
