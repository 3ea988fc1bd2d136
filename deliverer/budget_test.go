package deliverer

import (
	"sync"
	"testing"
	"time"
)

// fakePumper takes a slot of b when pumped, if want says so.
type fakePumper struct {
	b     *budget
	mu    sync.Mutex
	want  bool
	pumps int
	slots []*slot
	ch    chan struct{}
}

func newFakePumper(b *budget, want bool) *fakePumper {
	return &fakePumper{b: b, want: want, ch: make(chan struct{}, 100)}
}

func (f *fakePumper) pump() {
	f.mu.Lock()
	f.pumps++
	if f.want && f.b.available(f) {
		f.slots = append(f.slots, f.b.take())
	}
	f.mu.Unlock()
	f.ch <- struct{}{}
}

func (f *fakePumper) state() (pumps, slots int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pumps, len(f.slots)
}

func TestBudgetBoundsAndWakesWaitersInOrder(t *testing.T) {
	b := newBudget(2, time.Hour)
	s1, s2 := b.take(), b.take()
	a, c := newFakePumper(b, true), newFakePumper(b, true)
	if b.available(a) {
		t.Fatal("a slot was available with 2 of 2 in use")
	}
	b.available(a) // asking again does not queue a twice
	if b.available(c) {
		t.Fatal("a slot was available with 2 of 2 in use")
	}
	s1.release()
	if p, n := a.state(); p != 1 || n != 1 {
		t.Fatalf("after one release the first waiter was pumped %d times and holds %d slots, want 1 and 1", p, n)
	}
	if p, _ := c.state(); p != 0 {
		t.Fatalf("the second waiter was pumped %d times with no slot free, want 0", p)
	}
	s1.release() // a second release of the same slot is a no-op
	if got := b.inUse(); got != 2 {
		t.Fatalf("in use %d after a double release, want 2", got)
	}
	s2.release()
	if p, n := c.state(); p != 1 || n != 1 {
		t.Fatalf("second waiter: pumped %d, slots %d, want 1 and 1", p, n)
	}
	if p, _ := a.state(); p != 1 {
		t.Fatalf("the first waiter was pumped %d times, want 1 (it left the wait list)", p)
	}
}

// A waiter that has nothing left to start must not strand the waiters
// behind it while slots are free.
func TestBudgetReleasePumpsPastIdleWaiters(t *testing.T) {
	b := newBudget(1, time.Hour)
	s := b.take()
	idle, busy := newFakePumper(b, false), newFakePumper(b, true)
	b.available(idle)
	b.available(busy)
	s.release()
	if p, _ := idle.state(); p != 1 {
		t.Fatalf("idle waiter pumped %d times, want 1", p)
	}
	if p, n := busy.state(); p != 1 || n != 1 {
		t.Fatalf("waiter behind an idle one: pumped %d, slots %d, want 1 and 1", p, n)
	}
}

// A delivery that hangs stops counting after the lease: the waiting
// partition gets its slot although the first delivery never ended.
func TestBudgetLeaseFreesHangingSlots(t *testing.T) {
	b := newBudget(1, 20*time.Millisecond)
	hanging := b.take()
	defer hanging.release()
	w := newFakePumper(b, true)
	if b.available(w) {
		t.Fatal("slot available while the only one is held")
	}
	select {
	case <-w.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not pumped after the lease ran out")
	}
	if _, n := w.state(); n != 1 {
		t.Fatalf("waiter holds %d slots after the lease, want 1", n)
	}
	hanging.release() // the delivery ends later: no double count
	if got := b.inUse(); got != 1 {
		t.Fatalf("in use %d, want 1 (the waiter's)", got)
	}
}
