// Package deliverer signs each record of the endpoint topics and POSTs it to
// its endpoint, committing offsets only over settled deliveries.
//
// A Deliverer consumes every <prefix>.endpoint.<id> topic by regular
// expression in the consumer group hookstream-deliverer. Each partition has
// several POSTs in flight at once; an offsets.Tracker per partition makes
// sure a commit only ever advances over a contiguous run of settled records,
// so a crash redelivers (at least once) and never skips. A partition whose
// queue is full is paused rather than blocking the poll loop. Revoked
// partitions are drained and committed before they are given up, and a
// shutdown stops fetching, settles what is in flight within a deadline,
// commits and leaves the group.
package deliverer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookstream/hookstream/pkg/clock"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// DefaultGroup is the deliverer's consumer group.
const DefaultGroup = "hookstream-deliverer"

// Version is sent in the User-Agent header (Hookstream/<Version>).
var Version = "0.1.0"

// Config configures a Deliverer. Zero values take the documented defaults.
type Config struct {
	Kafka kafka.Config
	// Group is the consumer group (default "hookstream-deliverer").
	Group string
	// MaxInFlightPerPartition bounds concurrent POSTs per partition
	// (default 16). An endpoint's own max_in_flight, when set, is split
	// across its partitions.
	MaxInFlightPerPartition int
	// MaxQueuedPerPartition is how many fetched records a partition may
	// hold before it is paused (default 512).
	MaxQueuedPerPartition int
	// AttemptTimeout bounds one POST (default 15s).
	AttemptTimeout time.Duration
	// RetryMinBackoff and RetryMaxBackoff bound the in-place retry backoff
	// (defaults 1s and 1m; ±20 % jitter).
	RetryMinBackoff, RetryMaxBackoff time.Duration
	// CommitInterval is how often settled offsets are committed (default 1s).
	CommitInterval time.Duration
	// ShutdownTimeout bounds how long a shutdown or a revocation waits for
	// in-flight attempts (default 30s).
	ShutdownTimeout time.Duration
	// Sender posts deliveries (default NewHTTPSender).
	Sender Sender
	// Clock stamps webhook-timestamp and times backoffs (default wall clock).
	Clock clock.Clock
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Registerer for metrics (default none).
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.MaxInFlightPerPartition <= 0 {
		c.MaxInFlightPerPartition = 16
	}
	if c.MaxQueuedPerPartition <= 0 {
		c.MaxQueuedPerPartition = 512
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.RetryMinBackoff <= 0 {
		c.RetryMinBackoff = time.Second
	}
	if c.RetryMaxBackoff < c.RetryMinBackoff {
		c.RetryMaxBackoff = max(time.Minute, c.RetryMinBackoff)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Sender == nil {
		c.Sender = NewHTTPSender(c.MaxInFlightPerPartition * 4)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Deliverer is the delivery stage. Create it with New and start it with Run;
// a Deliverer runs once.
type Deliverer struct {
	cfg    Config
	reg    *registry.Registry
	cat    *codec.Catalog
	topics kafka.Topics
	log    *slog.Logger
	m      *delivererMetrics
	sign   signers

	cl       *kgo.Client
	mu       sync.Mutex // guards parts
	parts    map[topicPartition]*partition
	commitMu sync.Mutex // serializes commits with revocation

	inflight sync.WaitGroup
	stopping atomic.Bool
	soft     context.Context // ends when shutdown begins: stop waiting to retry
	hard     context.Context // ends at the shutdown deadline: abort requests
}

type topicPartition struct {
	topic     string
	partition int32
}

// New returns a Deliverer for the endpoints of reg.
func New(cfg Config, reg *registry.Registry, cat *codec.Catalog) (*Deliverer, error) {
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("deliverer: %w", err)
	}
	cfg.setDefaults()
	d := &Deliverer{
		cfg: cfg, reg: reg, cat: cat, topics: cfg.Kafka.Topics(), log: cfg.Logger,
		m:     newMetrics(cfg.Registerer),
		parts: map[topicPartition]*partition{},
	}
	return d, nil
}

// Run delivers until ctx is cancelled, then shuts down: it stops fetching,
// lets in-flight attempts finish (up to ShutdownTimeout), commits what is
// settled and leaves the group. Records not settled are delivered again by
// the next owner of their partition.
func (d *Deliverer) Run(ctx context.Context) error {
	soft, softCancel := context.WithCancel(context.Background())
	defer softCancel()
	hard, hardCancel := context.WithCancel(context.Background())
	defer hardCancel()
	d.soft, d.hard = soft, hard

	cl, err := kgo.NewClient(d.cfg.Kafka.ClientOpts("deliverer",
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(d.topics.EndpointPattern()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(d.assigned),
		kgo.OnPartitionsRevoked(d.revoked),
		kgo.OnPartitionsLost(d.lost),
		kgo.MetadataMaxAge(10*time.Second), // discover new endpoint topics
		kgo.FetchMaxWait(250*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	d.cl = cl
	d.reg.OnChange(d.endpointChanged)
	d.log.Info("deliverer started", "group", d.cfg.Group, "pattern", d.topics.EndpointPattern())

	commitCtx, commitCancel := context.WithCancel(context.Background())
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(d.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-commitCtx.Done():
				return
			case <-t.C:
				d.commit(commitCtx, nil)
			}
		}
	}()

	for {
		fs := cl.PollRecords(ctx, 4096)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			d.log.Error("deliverer fetch", "topic", t, "partition", p, "err", err)
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			d.enqueue(p.Topic, p.Partition, p.Records)
		})
		cl.AllowRebalance()
	}

	// Shutdown: no new attempts, no more retry waits; in-flight attempts get
	// until the deadline, then are cancelled.
	d.stopping.Store(true)
	softCancel()
	if !waitTimeout(&d.inflight, d.cfg.ShutdownTimeout) {
		d.log.Warn("deliverer: shutdown deadline reached, cancelling in-flight attempts")
		hardCancel()
		d.inflight.Wait()
	}
	commitCancel()
	<-commitDone
	finalCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.commit(finalCtx, nil)
	cl.Close() // leaves the group; revoke callback commits again, harmlessly
	d.log.Info("deliverer stopped")
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (d *Deliverer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pause map[string][]int32
	for topic, ps := range assigned {
		id, ok := d.topics.EndpointID(topic)
		if !ok {
			continue
		}
		for _, p := range ps {
			tp := topicPartition{topic, p}
			part := newPartition(d, tp, id)
			d.parts[tp] = part
			if ep, ok := d.reg.Get(id); ok && ep.Status == registry.StatusDisabled {
				part.paused = true
				if pause == nil {
					pause = map[string][]int32{}
				}
				pause[topic] = append(pause[topic], p)
			}
		}
	}
	if pause != nil {
		d.cl.PauseFetchPartitions(pause)
	}
	d.m.partitions.Set(float64(len(d.parts)))
}

// revoked drains the revoked partitions (no new attempts; in-flight ones
// get until ShutdownTimeout), commits what they settled, and forgets them.
func (d *Deliverer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	parts := d.take(revoked)
	deadline := time.After(d.cfg.ShutdownTimeout)
	for _, p := range parts {
		if idle := p.drain(); idle != nil {
			select {
			case <-idle:
			case <-deadline:
			}
		}
	}
	d.commitLocked(ctx, parts)
	for _, p := range parts {
		p.forget()
	}
	cl.ResumeFetchPartitions(revoked) // a partition assigned again starts unpaused
}

// lost forgets partitions without committing: another member owns them.
func (d *Deliverer) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	for _, p := range d.take(lost) {
		p.drain()
		p.forget()
	}
	cl.ResumeFetchPartitions(lost)
}

func (d *Deliverer) take(tps map[string][]int32) []*partition {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*partition
	for topic, ps := range tps {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if part, ok := d.parts[tp]; ok {
				out = append(out, part)
				delete(d.parts, tp)
			}
		}
	}
	d.m.partitions.Set(float64(len(d.parts)))
	return out
}

func (d *Deliverer) enqueue(topic string, partition int32, recs []*kgo.Record) {
	d.mu.Lock()
	p := d.parts[topicPartition{topic, partition}]
	d.mu.Unlock()
	if p == nil {
		// Not assigned to us (a topic outside the endpoint pattern, or a
		// race with revocation that BlockRebalanceOnPoll rules out).
		d.log.Warn("deliverer: records for a partition not assigned here", "topic", topic, "partition", partition)
		return
	}
	p.enqueue(recs)
}

// endpointChanged resumes or re-pumps an endpoint's partitions when it is
// re-enabled, and drops cached signers of replaced endpoint versions.
func (d *Deliverer) endpointChanged(old, cur *registry.Endpoint) {
	if old != nil {
		d.sign.forget(old)
	}
	if cur == nil {
		return
	}
	if old == nil {
		d.cl.ForceMetadataRefresh() // a new endpoint topic to discover
	}
	topic := d.topics.Endpoint(cur.ID)
	d.mu.Lock()
	var ps []*partition
	for tp, p := range d.parts {
		if tp.topic == topic {
			ps = append(ps, p)
		}
	}
	d.mu.Unlock()
	for _, p := range ps {
		p.pump()
	}
}

// commit commits the settled offsets of parts (nil = every partition owned).
func (d *Deliverer) commit(ctx context.Context, parts []*partition) {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	if parts == nil {
		d.mu.Lock()
		for _, p := range d.parts {
			parts = append(parts, p)
		}
		d.mu.Unlock()
	}
	d.commitLocked(ctx, parts)
}

func (d *Deliverer) commitLocked(ctx context.Context, parts []*partition) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var todo []*partition
	for _, p := range parts {
		if eo, ok := p.toCommit(); ok {
			if offsets[p.tp.topic] == nil {
				offsets[p.tp.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[p.tp.topic][p.tp.partition] = eo
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return
	}
	var commitErr error
	d.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 && commitErr == nil {
					commitErr = fmt.Errorf("%s[%d]: error code %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
	})
	if commitErr != nil {
		d.m.commits.WithLabelValues("error").Inc()
		d.log.Warn("deliverer: commit failed; will retry", "err", commitErr)
		return
	}
	d.m.commits.WithLabelValues("ok").Inc()
	for _, p := range todo {
		p.committedTo(offsets[p.tp.topic][p.tp.partition].Offset)
	}
}
