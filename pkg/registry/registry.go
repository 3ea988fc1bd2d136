// Package registry is the endpoint registry: endpoints live in the compacted
// topic <prefix>.endpoints keyed by endpoint id, and every service
// materializes that topic in memory and follows changes live.
//
// A Registry is the read side: lock-free lookups by id and by tenant and
// event type, backed by an immutable snapshot replaced on each change. An
// Admin is the write side: it creates endpoint topics and writes endpoint
// records.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
)

// RecordName is the Avro full name of registry values.
const RecordName = "hookstream.Endpoint"

// Registry is an in-memory view of the registry topic that follows it live.
// All methods are safe for concurrent use.
type Registry struct {
	cl     *kgo.Client
	cat    *codec.Catalog
	log    *slog.Logger
	snap   atomic.Pointer[snapshot]
	synced chan struct{}
	done   chan struct{}
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners []func(old, cur *Endpoint)
	changed   chan struct{} // closed and replaced on every applied batch
}

type snapshot struct {
	byID     map[string]*Endpoint
	byTenant map[string][]*Endpoint // active and inactive, sorted by id
}

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// Open starts following the registry topic and returns once the view has
// caught up with everything written before Open was called (or ctx ends).
// The topic must exist (kafka.Config.EnsureTopics with CoreTopics).
func Open(ctx context.Context, cfg kafka.Config, cat *codec.Catalog, opts ...Option) (*Registry, error) {
	topic := cfg.Topics().Endpoints()
	cl, err := kgo.NewClient(cfg.ClientOpts("registry",
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500_000_000), // 500ms: registry changes are rare
	)...)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	ends, err := listEndOffsets(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("registry: reading end offsets of %s: %w", topic, err)
	}
	target := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			target[o.Partition] = o.Offset
		}
	})
	runCtx, cancel := context.WithCancel(context.Background())
	r := &Registry{
		cl: cl, cat: cat, log: slog.Default(),
		synced: make(chan struct{}), done: make(chan struct{}),
		cancel: cancel, changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	r.snap.Store(&snapshot{byID: map[string]*Endpoint{}, byTenant: map[string][]*Endpoint{}})
	go r.run(runCtx, target)
	select {
	case <-r.synced:
		return r, nil
	case <-ctx.Done():
		r.Close()
		return nil, fmt.Errorf("registry: catching up with %s: %w", topic, ctx.Err())
	}
}

// Close stops following the topic.
func (r *Registry) Close() {
	r.cancel()
	<-r.done
	r.cl.Close()
}

func (r *Registry) run(ctx context.Context, target map[int32]int64) {
	defer close(r.done)
	if len(target) == 0 {
		close(r.synced)
	}
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			r.log.Error("registry fetch", "topic", t, "partition", p, "err", err)
		})
		var changes [][2]*Endpoint
		caughtUp := false
		old := r.snap.Load()
		next := old
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, rec := range p.Records {
				prev := next.byID[string(rec.Key)]
				cur, err := r.decode(rec)
				if err != nil {
					r.log.Error("registry: skipping undecodable endpoint record", "key", string(rec.Key), "offset", rec.Offset, "err", err)
					continue
				}
				if next == old {
					next = old.clone()
				}
				next.put(string(rec.Key), cur)
				changes = append(changes, [2]*Endpoint{prev, cur})
			}
			if end, ok := target[p.Partition]; ok && len(p.Records) > 0 && p.Records[len(p.Records)-1].Offset+1 >= end {
				delete(target, p.Partition)
				caughtUp = len(target) == 0
			}
		})
		if next != old {
			r.snap.Store(next)
		}
		if caughtUp {
			close(r.synced)
		}
		r.mu.Lock()
		ls := r.listeners
		if len(changes) > 0 {
			close(r.changed)
			r.changed = make(chan struct{})
		}
		r.mu.Unlock()
		for _, c := range changes {
			for _, l := range ls {
				l(c[0], c[1])
			}
		}
	}
}

func (r *Registry) decode(rec *kgo.Record) (*Endpoint, error) {
	if rec.Value == nil {
		return nil, nil // tombstone
	}
	var e Endpoint
	if err := r.cat.Unmarshal(rec.Value, RecordName, &e); err != nil {
		return nil, err
	}
	if e.ID != string(rec.Key) {
		return nil, fmt.Errorf("record key %q does not match endpoint id %q", rec.Key, e.ID)
	}
	return &e, nil
}

func (s *snapshot) clone() *snapshot {
	n := &snapshot{byID: make(map[string]*Endpoint, len(s.byID)+1), byTenant: make(map[string][]*Endpoint, len(s.byTenant)+1)}
	for k, v := range s.byID {
		n.byID[k] = v
	}
	for k, v := range s.byTenant {
		n.byTenant[k] = v // slices are replaced, never modified in place
	}
	return n
}

func (s *snapshot) put(id string, e *Endpoint) {
	if prev, ok := s.byID[id]; ok {
		s.byTenant[prev.TenantID] = slices.DeleteFunc(slices.Clone(s.byTenant[prev.TenantID]), func(x *Endpoint) bool { return x.ID == id })
		if len(s.byTenant[prev.TenantID]) == 0 {
			delete(s.byTenant, prev.TenantID)
		}
		delete(s.byID, id)
	}
	if e == nil {
		return
	}
	s.byID[id] = e
	list := append(slices.Clone(s.byTenant[e.TenantID]), e)
	slices.SortFunc(list, byID)
	s.byTenant[e.TenantID] = list
}

// Get returns the endpoint with id in any status.
func (r *Registry) Get(id string) (*Endpoint, bool) {
	e, ok := r.snap.Load().byID[id]
	return e, ok
}

// Match appends to dst the tenant's endpoints subscribed to eventType that
// take fan-out, in id order, and returns the extended slice. Disabled
// endpoints take fan-out too: their topic keeps the events while the
// deliverer holds them, and re-enabling delivers them. Deleted ones do not.
func (r *Registry) Match(dst []*Endpoint, tenantID, eventType string) []*Endpoint {
	for _, e := range r.snap.Load().byTenant[tenantID] {
		if e.Status != StatusDeleted && e.Subscribes(eventType) {
			dst = append(dst, e)
		}
	}
	return dst
}

// List returns every endpoint of a tenant ("" = all tenants) in id order.
func (r *Registry) List(tenantID string) []*Endpoint {
	s := r.snap.Load()
	if tenantID != "" {
		return slices.Clone(s.byTenant[tenantID])
	}
	all := make([]*Endpoint, 0, len(s.byID))
	for _, e := range s.byID {
		all = append(all, e)
	}
	slices.SortFunc(all, byID)
	return all
}

// OnChange registers fn to be called, from the registry's goroutine, for
// every change after registration: old is nil for a new endpoint, cur is nil
// for a removed one. fn must not block.
func (r *Registry) OnChange(fn func(old, cur *Endpoint)) {
	r.mu.Lock()
	r.listeners = append(slices.Clone(r.listeners), fn)
	r.mu.Unlock()
}

// WaitFor blocks until cond holds for the current view or ctx ends.
func (r *Registry) WaitFor(ctx context.Context, cond func(*Registry) bool) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("registry: %w", ctx.Err())
		}
	}
}

func byID(a, b *Endpoint) int { return strings.Compare(a.ID, b.ID) }

// ErrNotFound is returned for an endpoint id the registry does not know.
var ErrNotFound = errors.New("registry: endpoint not found")

// endOffsetsPatience is how long Open keeps asking for the registry topic's
// end offsets while brokers answer with a retriable error: right after the
// topic is created, a broker of a multi-node cluster may not know it yet
// (UNKNOWN_TOPIC_OR_PARTITION).
const endOffsetsPatience = 15 * time.Second

func listEndOffsets(ctx context.Context, adm *kadm.Client, topic string) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(endOffsetsPatience)
	backoff := 50 * time.Millisecond
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return ends, err
		}
		select {
		case <-ctx.Done():
			return ends, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
