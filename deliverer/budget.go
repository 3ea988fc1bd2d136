package deliverer

import (
	"sync"
	"time"
)

// budget bounds the deliveries in flight across all partitions of one
// deliverer, so that thousands of endpoints do not mean tens of thousands of
// concurrent requests (each a connection, goroutines and buffers).
//
// A delivery holds its slot until it ends or for at most lease, whichever
// comes first: an attempt that hangs (a black-hole endpoint) stops counting
// after the lease, so slow endpoints cannot use up the budget and stall the
// others. What hanging attempts cost is bounded separately, by the
// per-endpoint in-flight limit and the circuit breaker.
//
// A partition that finds the budget spent joins a wait list and is pumped
// again, in arrival order, as slots come free.
type budget struct {
	max   int
	lease time.Duration

	mu      sync.Mutex
	used    int
	waiters []pumper
	queued  map[pumper]bool
}

// pumper is what waits for a slot: a partition, pumped again to start its
// jobs.
type pumper interface{ pump() }

func newBudget(max int, lease time.Duration) *budget {
	return &budget{max: max, lease: lease, queued: map[pumper]bool{}}
}

// slot is one delivery's claim on the budget.
type slot struct {
	b     *budget
	once  sync.Once
	timer *time.Timer
}

// available reports whether a slot is free; if none is, it puts p on the
// wait list. A partition calls it with its lock held, before the endpoint's own
// admission; take then claims the slot. Partitions pumping at the same time
// may overshoot max by a few: the bound is for memory, not exact.
func (b *budget) available(p pumper) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used < b.max {
		return true
	}
	if !b.queued[p] {
		b.queued[p] = true
		b.waiters = append(b.waiters, p)
	}
	return false
}

// take claims a slot, released at the latest after the lease.
func (b *budget) take() *slot {
	b.mu.Lock()
	b.used++
	b.mu.Unlock()
	s := &slot{b: b}
	s.timer = time.AfterFunc(b.lease, s.expire)
	return s
}

// release gives the slot back (once: at the lease or when the delivery
// ends, whichever is first) and pumps waiting partitions, longest waiting
// first, while slots are free: a pumped partition may have nothing left to
// start, and the next one must not wait for another release that may never
// come. It must be called without any partition's lock held.
func (s *slot) release() {
	s.once.Do(s.free)
	s.timer.Stop()
}

// expire is the lease timer's release; it never touches s.timer, which
// the goroutine that took the slot may still be setting.
func (s *slot) expire() { s.once.Do(s.free) }

func (s *slot) free() {
	b := s.b
	b.mu.Lock()
	b.used--
	for b.used < b.max && len(b.waiters) > 0 {
		next := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		delete(b.queued, next)
		b.mu.Unlock()
		next.pump()
		b.mu.Lock()
	}
	b.mu.Unlock()
}

// inUse is the number of slots held.
func (b *budget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
