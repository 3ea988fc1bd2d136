package webhook

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// Store is a de-duplication store, keyed by webhook-id.
type Store interface {
	// Seen records id and reports whether it was already recorded within
	// ttl. It is the one-step form, for consumers that mark an id and act on
	// it at once; Middleware uses the two phases of TwoPhaseStore instead.
	Seen(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// TwoPhaseStore is the de-duplication protocol Middleware needs so that a
// failed delivery stays retryable: reserve the id before running the handler,
// then commit it if the handler succeeded or release it if it failed.
// A reservation is a lease: if the process dies before committing or
// releasing, the reservation lapses by itself and the sender's next retry is
// processed.
//
// It maps onto common stores: in Redis, Reserve is SET id pending NX PX lease
// (and a GET to tell InFlight from Done when that fails), Commit is SET id done
// PX ttl, Release is DEL of a pending id; in SQL, an upsert with an expiry
// column. MemoryStore implements it in memory.
type TwoPhaseStore interface {
	// Reserve claims id for one handler run lasting at most lease. It
	// returns Reserved if the caller now holds the claim (it must then call
	// Commit or Release), InFlight if another unexpired claim holds id, and
	// Done if id was committed and its ttl has not expired.
	Reserve(ctx context.Context, id string, lease time.Duration) (Reservation, error)
	// Commit marks id done for ttl, whether or not the claim still exists.
	Commit(ctx context.Context, id string, ttl time.Duration) error
	// Release drops a claim on id so that id can be reserved again. It does
	// not remove a committed id.
	Release(ctx context.Context, id string) error
}

// Reservation is the outcome of TwoPhaseStore.Reserve.
type Reservation int

// Reservation outcomes.
const (
	Reserved Reservation = iota + 1 // the caller holds the claim
	InFlight                        // another claim is being processed
	Done                            // already processed successfully
)

func (r Reservation) String() string {
	switch r {
	case Reserved:
		return "reserved"
	case InFlight:
		return "in flight"
	case Done:
		return "done"
	}
	return "invalid reservation"
}

// ErrStoreClosed is returned by the methods of a closed MemoryStore.
var ErrStoreClosed = errors.New("webhook: store closed")

// DefaultMaxEntries is the default capacity of a MemoryStore.
const DefaultMaxEntries = 1 << 20

// StoreOption configures NewMemoryStore. WithClock is one too.
type StoreOption interface{ applyStore(*storeConfig) }

type storeConfig struct {
	now        func() time.Time
	maxEntries int
}

type maxEntriesOption int

func (o maxEntriesOption) applyStore(c *storeConfig) { c.maxEntries = int(o) }

// WithMaxEntries bounds the number of ids a MemoryStore keeps (default
// DefaultMaxEntries; n <= 0 means the default). When it is full, recording a
// new id evicts the entry closest to expiry, so a store that is too small
// weakens de-duplication instead of refusing deliveries.
func WithMaxEntries(n int) StoreOption { return maxEntriesOption(n) }

// MemoryStore is an in-memory, bounded Store and TwoPhaseStore for a single
// process. Entries expire lazily: an expired entry counts as absent, and every
// write first removes the expired entries (kept in a min-heap by expiry, so
// this is cheap), hence the store needs no background goroutine. It is safe
// for concurrent use.
type MemoryStore struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	entries map[string]*memEntry
	byExp   expiryHeap
	closed  bool
}

type memEntry struct {
	id      string
	expires time.Time
	done    bool
	index   int // in byExp
}

// NewMemoryStore returns an empty MemoryStore. Options: WithMaxEntries,
// WithClock.
func NewMemoryStore(opts ...StoreOption) *MemoryStore {
	cfg := storeConfig{now: time.Now, maxEntries: DefaultMaxEntries}
	for _, o := range opts {
		o.applyStore(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.maxEntries <= 0 {
		cfg.maxEntries = DefaultMaxEntries
	}
	return &MemoryStore{now: cfg.now, max: cfg.maxEntries, entries: make(map[string]*memEntry)}
}

// lookup returns the live entry for id after dropping expired entries.
// s.mu must be held.
func (s *MemoryStore) lookup(id string, now time.Time) *memEntry {
	for len(s.byExp) > 0 && !now.Before(s.byExp[0].expires) {
		e := heap.Pop(&s.byExp).(*memEntry)
		delete(s.entries, e.id)
	}
	return s.entries[id]
}

// put records id, evicting the entry closest to expiry if the store is full.
// s.mu must be held and id must not be present.
func (s *MemoryStore) put(id string, expires time.Time, done bool) {
	if len(s.entries) >= s.max {
		e := heap.Pop(&s.byExp).(*memEntry)
		delete(s.entries, e.id)
	}
	e := &memEntry{id: id, expires: expires, done: done}
	s.entries[id] = e
	heap.Push(&s.byExp, e)
}

// Seen records id for ttl and reports whether it was already recorded,
// committed or reserved, and not expired. It does not change an existing
// entry.
func (s *MemoryStore) Seen(_ context.Context, id string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrStoreClosed
	}
	now := s.now()
	if s.lookup(id, now) != nil {
		return true, nil
	}
	if ttl > 0 {
		s.put(id, now.Add(ttl), true)
	}
	return false, nil
}

// Reserve implements TwoPhaseStore.
func (s *MemoryStore) Reserve(_ context.Context, id string, lease time.Duration) (Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrStoreClosed
	}
	now := s.now()
	if e := s.lookup(id, now); e != nil {
		if e.done {
			return Done, nil
		}
		return InFlight, nil
	}
	if lease > 0 {
		s.put(id, now.Add(lease), false)
	}
	return Reserved, nil
}

// Commit implements TwoPhaseStore.
func (s *MemoryStore) Commit(_ context.Context, id string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	now := s.now()
	e := s.lookup(id, now)
	switch {
	case ttl <= 0:
		if e != nil {
			s.remove(e)
		}
	case e == nil:
		s.put(id, now.Add(ttl), true)
	default:
		e.done = true
		e.expires = now.Add(ttl)
		heap.Fix(&s.byExp, e.index)
	}
	return nil
}

// Release implements TwoPhaseStore.
func (s *MemoryStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	if e := s.lookup(id, s.now()); e != nil && !e.done {
		s.remove(e)
	}
	return nil
}

func (s *MemoryStore) remove(e *memEntry) {
	heap.Remove(&s.byExp, e.index)
	delete(s.entries, e.id)
}

// Len returns the number of ids held, reserved or committed, that have not
// expired.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for _, e := range s.byExp {
		if now.Before(e.expires) {
			n++
		}
	}
	return n
}

// Close drops every entry. Later calls return ErrStoreClosed. Close is
// idempotent and always returns nil.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.entries = nil
	s.byExp = nil
	return nil
}

// expiryHeap is a min-heap of entries by expiry time.
type expiryHeap []*memEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ TwoPhaseStore = (*MemoryStore)(nil)
)
