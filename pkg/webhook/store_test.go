package webhook

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: testNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMemoryStoreSeenExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := NewMemoryStore(WithClock(clk.Now))
	defer s.Close()

	seen := func(id string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := s.Seen(ctx, id, ttl)
		if err != nil || got != want {
			t.Fatalf("Seen(%q, %v) = %v, %v; want %v", id, ttl, got, err, want)
		}
	}
	seen("a", time.Hour, false)
	seen("a", time.Hour, true)
	seen("b", 2*time.Hour, false)
	clk.Advance(time.Hour - time.Nanosecond)
	seen("a", time.Hour, true) // does not extend the first ttl
	clk.Advance(time.Nanosecond)
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d after a expired, want 1", n)
	}
	seen("a", time.Hour, false) // expired exactly at ttl: recorded anew
	seen("b", time.Hour, true)
	clk.Advance(time.Hour)
	seen("b", time.Hour, false)
	seen("zero-ttl", 0, false)
	seen("zero-ttl", 0, false)
}

func TestMemoryStoreTwoPhase(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := NewMemoryStore(WithClock(clk.Now))
	reserve := func(id string, want Reservation) {
		t.Helper()
		got, err := s.Reserve(ctx, id, time.Minute)
		if err != nil || got != want {
			t.Fatalf("Reserve(%q) = %v, %v; want %v", id, got, err, want)
		}
	}

	reserve("a", Reserved)
	reserve("a", InFlight)
	if seen, _ := s.Seen(ctx, "a", time.Hour); !seen {
		t.Error("Seen does not report a reserved id")
	}
	if err := s.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	reserve("a", Reserved) // released: free again
	if err := s.Commit(ctx, "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	reserve("a", Done)
	if err := s.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	reserve("a", Done) // Release does not undo a commit
	clk.Advance(time.Hour)
	reserve("a", Reserved) // the commit expired

	// A reservation lapses after its lease (the holder died).
	reserve("b", Reserved)
	clk.Advance(time.Minute - time.Nanosecond)
	reserve("b", InFlight)
	clk.Advance(time.Nanosecond)
	reserve("b", Reserved)

	// Commit after the lease lapsed still records the id.
	clk.Advance(2 * time.Minute)
	if err := s.Commit(ctx, "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	reserve("b", Done)

	// Seen records a committed id.
	if seen, _ := s.Seen(ctx, "c", time.Hour); seen {
		t.Fatal("Seen(c) = true on first call")
	}
	reserve("c", Done)

	if Reserved.String() != "reserved" || InFlight.String() != "in flight" || Done.String() != "done" || Reservation(0).String() != "invalid reservation" {
		t.Error("Reservation.String")
	}
}

func TestMemoryStoreBounded(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := NewMemoryStore(WithClock(clk.Now), WithMaxEntries(3))
	for i, ttl := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		if seen, _ := s.Seen(ctx, strconv.Itoa(i), ttl); seen {
			t.Fatal("fresh id seen")
		}
	}
	if seen, _ := s.Seen(ctx, "3", time.Hour); seen {
		t.Fatal("fresh id seen")
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	// "1" expired soonest, so it was evicted; the others remain.
	for id, want := range map[string]bool{"0": true, "2": true, "3": true} {
		if got, _ := s.Seen(ctx, id, time.Hour); got != want {
			t.Errorf("Seen(%s) = %v, want %v", id, got, want)
		}
	}
	if got, _ := s.Seen(ctx, "1", time.Hour); got {
		t.Error("evicted id still seen")
	}
	// Expired entries are dropped before anything is evicted.
	clk.Advance(24 * time.Hour)
	for i := range 3 {
		if seen, _ := s.Seen(ctx, "new"+strconv.Itoa(i), time.Hour); seen {
			t.Fatal("fresh id seen")
		}
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	if got := len(s.entries); got != 3 {
		t.Errorf("map holds %d entries, want 3", got)
	}
}

func TestMemoryStoreClose(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seen(ctx, "a", time.Hour); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Seen after Close = %v", err)
	}
	if _, err := s.Reserve(ctx, "a", time.Hour); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Reserve after Close = %v", err)
	}
	if err := s.Commit(ctx, "a", time.Hour); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Commit after Close = %v", err)
	}
	if err := s.Release(ctx, "a"); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Release after Close = %v", err)
	}
}

func TestMemoryStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := NewMemoryStore(WithClock(clk.Now), WithMaxEntries(10000))
	const goroutines, ids = 16, 500
	var firstSeen, reserved [ids]atomic.Int32
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range ids {
				id := strconv.Itoa(i)
				if seen, err := s.Seen(ctx, "seen/"+id, time.Hour); err != nil {
					t.Error(err)
				} else if !seen {
					firstSeen[i].Add(1)
				}
				r, err := s.Reserve(ctx, "two/"+id, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if r == Reserved {
					reserved[i].Add(1)
					_ = s.Commit(ctx, "two/"+id, time.Hour)
				}
				if i%50 == 0 {
					clk.Advance(time.Millisecond)
					_ = s.Len()
				}
			}
		})
	}
	wg.Wait()
	for i := range ids {
		if n := firstSeen[i].Load(); n != 1 {
			t.Errorf("id %d: Seen returned false %d times, want exactly once", i, n)
		}
		if n := reserved[i].Load(); n != 1 {
			t.Errorf("id %d: reserved %d times, want exactly once", i, n)
		}
	}
}

// TestMemoryStoreReservationExclusive checks that at most one holder has a
// reservation at any time while holders keep releasing and re-reserving.
func TestMemoryStoreReservationExclusive(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	var holders, overlaps, wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				r, err := s.Reserve(ctx, "id", time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if r != Reserved {
					continue
				}
				wins.Add(1)
				if holders.Add(1) > 1 {
					overlaps.Add(1)
				}
				holders.Add(-1)
				_ = s.Release(ctx, "id")
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d reservations overlapped another", n)
	}
	if wins.Load() < 2 {
		t.Errorf("only %d reservations won; Release does not free the id", wins.Load())
	}
}
