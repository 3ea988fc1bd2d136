package deliverer

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/offsets"
	"github.com/hookstream/hookstream/pkg/registry"
)

// partition is the delivery state of one assigned endpoint-topic partition:
// records fetched but not started, attempts in flight, and the tracker that
// decides how far the commit may go.
type partition struct {
	d          *Deliverer
	tp         topicPartition
	endpointID string

	mu        sync.Mutex
	tr        *offsets.Tracker
	queue     []*kgo.Record // fetched, not started; queue[head:] is live
	head      int
	inflight  int
	paused    bool          // fetching paused because the queue is full or the endpoint disabled
	draining  bool          // revoked or lost: start nothing new
	gone      bool          // forgotten: settle nothing more
	idle      chan struct{} // closed when inflight reaches 0 while draining
	committed int64         // last offset committed, -1 = none
}

func newPartition(d *Deliverer, tp topicPartition, endpointID string) *partition {
	return &partition{d: d, tp: tp, endpointID: endpointID, tr: offsets.NewTracker(), committed: -1}
}

func (p *partition) enqueue(recs []*kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return
	}
	for _, r := range recs {
		p.tr.Add(r.Offset, r.LeaderEpoch)
		p.queue = append(p.queue, r)
	}
	p.d.m.queued.Add(float64(len(recs)))
	p.pumpLocked()
	if !p.paused && len(p.queue)-p.head >= p.d.cfg.MaxQueuedPerPartition {
		p.paused = true
		p.d.cl.PauseFetchPartitions(map[string][]int32{p.tp.topic: {p.tp.partition}})
	}
}

func (p *partition) pump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pumpLocked()
}

// pumpLocked starts attempts while the partition has room, and resumes
// fetching once the queue has drained to half.
func (p *partition) pumpLocked() {
	if p.draining || p.d.stopping.Load() {
		return
	}
	ep, ok := p.d.reg.Get(p.endpointID)
	if ok && ep.Status == registry.StatusDisabled {
		return // held until re-enabled; the full queue pauses fetching
	}
	limit := p.d.cfg.MaxInFlightPerPartition
	if ok && ep.MaxInFlight > 0 {
		limit = max(1, int(ep.MaxInFlight)/max(1, int(ep.Partitions)))
	}
	for p.inflight < limit && p.head < len(p.queue) {
		rec := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		p.inflight++
		p.d.inflight.Add(1)
		p.d.m.queued.Dec()
		p.d.m.inflight.Inc()
		go p.run(rec)
	}
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	} else if p.head > 1024 && p.head*2 > len(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	if p.paused && len(p.queue)-p.head <= p.d.cfg.MaxQueuedPerPartition/2 && !(ok && ep.Status == registry.StatusDisabled) {
		p.paused = false
		p.d.cl.ResumeFetchPartitions(map[string][]int32{p.tp.topic: {p.tp.partition}})
	}
}

func (p *partition) run(rec *kgo.Record) {
	settled := p.d.deliver(p.endpointID, rec)
	p.mu.Lock()
	p.inflight--
	if settled && !p.gone {
		p.tr.Settle(rec.Offset)
	}
	if p.inflight == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	p.pumpLocked()
	p.mu.Unlock()
	p.d.m.inflight.Dec()
	p.d.inflight.Done()
}

// drain stops new attempts and drops the queue (those records were never
// started and are not committed, so the next owner delivers them). It returns
// a channel closed when in-flight attempts are done, or nil if none are.
func (p *partition) drain() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = true
	p.d.m.queued.Sub(float64(len(p.queue) - p.head))
	clear(p.queue)
	p.queue, p.head = nil, 0
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
