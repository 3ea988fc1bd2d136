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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookstream/hookstream/pkg/clock"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/producer"
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
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to another (default 10s).
	SessionTimeout time.Duration
	// InstanceID, if set, makes this a static group member: a restart with
	// the same id takes its partitions back at once, without a rebalance.
	InstanceID string
	// MaxInFlightPerPartition bounds concurrent jobs per partition
	// (default 16).
	MaxInFlightPerPartition int
	// MaxInFlight bounds deliveries in flight across all partitions
	// (default 1024): memory stays flat with thousands of endpoints. A
	// delivery counts for at most InFlightLease, so hanging attempts do not
	// use up the bound.
	MaxInFlight int
	// InFlightLease is how long one delivery counts against MaxInFlight at
	// most (default 2s).
	InFlightLease time.Duration
	// MaxInFlightPerEndpoint bounds concurrent POSTs to one endpoint across
	// its topic and the retry tiers (default 64); an endpoint's own
	// max_in_flight overrides it.
	MaxInFlightPerEndpoint int
	// MaxQueuedPerPartition is how many fetched records a partition may
	// hold before its fetching is paused (default 64: four times the
	// default in-flight bound keeps the partition busy).
	MaxQueuedPerPartition int
	// MaxQueued bounds fetched-but-not-started records across all
	// partitions (default 16384): past it, each partition may hold only an
	// equal share, so memory stays flat with thousands of endpoints and a
	// stalled endpoint's backlog never stops the others from fetching.
	MaxQueued int
	// AttemptTimeout bounds one POST (default 15s).
	AttemptTimeout time.Duration
	// Schedule is the delay before each retry (default DefaultSchedule);
	// one retry topic per distinct delay. An endpoint may set its own.
	Schedule Schedule
	// Jitter spreads each retry delay by ±Jitter (default 0.2; negative = none).
	Jitter float64
	// RetryClientErrors retries 4xx answers (other than 408/410/429) on the
	// schedule instead of dead-lettering them at once (reason exhausted at
	// its end). They still count as answers, not failures, for the breaker
	// and the auto-disable streak: the endpoint is up and refusing.
	RetryClientErrors bool
	// MaxAttempts caps attempts including throttled ones, which do not
	// count against the schedule (default 3 × (len(Schedule)+1)).
	MaxAttempts int
	// RetryPartitions is the partition count of each retry tier (default 6).
	RetryPartitions int32
	// ReparkDelay is the shortest wait before a retry-tier record of a
	// paused endpoint comes back (default 30s).
	ReparkDelay time.Duration
	// BreakerFailures consecutive failed attempts open an endpoint's
	// circuit breaker (default 5).
	BreakerFailures int
	// BreakerOpenTimeout is how long a breaker stays open before one probe
	// is let through (default 30s).
	BreakerOpenTimeout time.Duration
	// AutoDisableAfter disables an endpoint that has failed continuously
	// this long (default 5 days).
	AutoDisableAfter time.Duration
	// CommitInterval is how often settled offsets are committed (default 1s).
	CommitInterval time.Duration
	// ShutdownTimeout bounds how long a shutdown or a revocation waits for
	// in-flight attempts (default 30s).
	ShutdownTimeout time.Duration
	// AllowPrivateTargets lets the default Sender connect to loopback,
	// private and link-local addresses (tests, a dev stack, or endpoints
	// deliberately inside the network). Off by default.
	AllowPrivateTargets bool
	// HTTPClient picks the default Sender: "fasthttp" (the default:
	// NewFastSender, HTTP/1.1, about half the CPU per delivery) or
	// "net/http" (NewHTTPSender: HTTP/2 where the endpoint offers it, and,
	// with AllowPrivateTargets, an egress proxy from HTTPS_PROXY). Ignored
	// when Sender is set.
	HTTPClient string
	// Sender posts deliveries (default: per HTTPClient).
	Sender Sender
	// Clock stamps webhook-timestamp and times retries (default wall clock).
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
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxInFlightPerPartition <= 0 {
		c.MaxInFlightPerPartition = 16
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1024
	}
	if c.InFlightLease <= 0 {
		c.InFlightLease = 2 * time.Second
	}
	if c.MaxInFlightPerEndpoint <= 0 {
		c.MaxInFlightPerEndpoint = 64
	}
	if c.MaxQueuedPerPartition <= 0 {
		c.MaxQueuedPerPartition = 64
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 16384
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3 * (len(c.Schedule) + 1)
	}
	if c.RetryPartitions <= 0 {
		c.RetryPartitions = 6
	}
	if c.ReparkDelay <= 0 {
		c.ReparkDelay = 30 * time.Second
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpenTimeout <= 0 {
		c.BreakerOpenTimeout = 30 * time.Second
	}
	if c.AutoDisableAfter <= 0 {
		c.AutoDisableAfter = 5 * 24 * time.Hour
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Sender == nil {
		// Connections per host (net/http: kept idle; fasthttp: open at
		// all): several endpoints often share a host, so allow well above
		// one endpoint's in-flight cap; idle ones close after 90 s.
		perHost := max(1024, 4*c.MaxInFlightPerEndpoint)
		if c.HTTPClient == HTTPClientNetHTTP {
			c.Sender = NewHTTPSender(perHost, c.AllowPrivateTargets)
		} else {
			c.Sender = NewFastSender(perHost, c.AllowPrivateTargets)
		}
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
	pause    *pauser    // pauses and resumes cl's fetching, in batches
	mu       sync.Mutex // guards parts
	parts    map[topicPartition]*partition
	commitMu sync.Mutex // serializes commits with revocation

	eps        sync.Map // endpoint id -> *endpointState
	tiers      []time.Duration
	tierTopics map[string]time.Duration
	prod       *kgo.Client // retry tiers, dead letters, endpoint.disabled events
	admin      *registry.Admin
	publish    func(ctx context.Context, eventType, tenant string, data any) error

	jobs    jobCount // started jobs not yet finished
	workers *workers // goroutines that run the jobs
	budget  *budget  // bounds deliveries in flight across partitions

	queued   atomic.Int64 // fetched jobs not started, all partitions
	nparts   atomic.Int64 // assigned partitions
	stopping atomic.Bool
	soft     context.Context // ends when shutdown begins: stop waiting to retry
	hard     context.Context // ends at the shutdown deadline: abort requests
	// hardShards are children of hard that attempts on a Sender other than
	// a deadlineSender derive their timeouts from, round-robin: a context
	// keeps its children in a map under one mutex, which thousands of
	// concurrent attempts would all contend on.
	hardShards [16]context.Context
	shardNext  atomic.Uint32
	// fast is cfg.Sender when it takes deadlines as values: its attempts
	// run on hard itself, with no context of their own.
	fast deadlineSender
}

// The HTTP clients Config.HTTPClient names.
const (
	HTTPClientFast    = "fasthttp"
	HTTPClientNetHTTP = "net/http"
)

// CheckHTTPClient reports whether name is one of the HTTP clients
// Config.HTTPClient accepts.
func CheckHTTPClient(name string) error {
	if name != HTTPClientFast && name != HTTPClientNetHTTP {
		return fmt.Errorf("unknown HTTP client %q: want %s or %s", name, HTTPClientFast, HTTPClientNetHTTP)
	}
	return nil
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
	if cfg.HTTPClient != "" {
		if err := CheckHTTPClient(cfg.HTTPClient); err != nil {
			return nil, fmt.Errorf("deliverer: %w", err)
		}
	}
	cfg.setDefaults()
	for i, s := range cfg.Schedule {
		if s <= 0 || s%time.Millisecond != 0 {
			return nil, fmt.Errorf("deliverer: retry delay %d is %v; delays must be positive whole milliseconds (they name the retry topics)", i, s)
		}
	}
	d := &Deliverer{
		cfg: cfg, reg: reg, cat: cat, topics: cfg.Kafka.Topics(), log: cfg.Logger,
		m:          newMetrics(cfg.Registerer),
		parts:      map[topicPartition]*partition{},
		workers:    newWorkers(30 * time.Second),
		pause:      newPauser(),
		budget:     newBudget(cfg.MaxInFlight, cfg.InFlightLease),
		tiers:      cfg.Schedule.tiers(),
		tierTopics: map[string]time.Duration{},
	}
	for _, t := range d.tiers {
		d.tierTopics[d.topics.Retry(t)] = t
	}
	d.fast, _ = cfg.Sender.(deadlineSender)
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
	defer d.setContexts(soft, hard)()

	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	d.cfg.Kafka = d.cfg.Kafka.WithBrokerBatchLimit(pctx, d.log, "deliverer")
	pcancel()
	prod, err := kgo.NewClient(d.cfg.Kafka.ClientOpts("deliverer-producer",
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	defer prod.Close()
	d.prod = prod
	d.admin = registry.NewAdmin(d.cfg.Kafka, prod, d.cat, d.reg)
	pub, err := producer.New(producer.WithKafkaConfig(d.cfg.Kafka), producer.WithCatalog(d.cat))
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	defer pub.Close()
	d.publish = func(ctx context.Context, eventType, tenant string, data any) error {
		_, err := pub.Publish(ctx, producer.Event{Type: eventType, TenantID: tenant, Data: data})
		return err
	}
	var tierSpecs []kafka.TopicSpec
	for topic := range d.tierTopics {
		tierSpecs = append(tierSpecs, kafka.TopicSpec{Name: topic, Partitions: d.cfg.RetryPartitions})
	}
	tctx, tcancel := context.WithTimeout(ctx, time.Minute)
	err = d.cfg.Kafka.EnsureTopics(tctx, kadm.NewClient(prod), tierSpecs...)
	tcancel()
	if err != nil {
		return fmt.Errorf("deliverer: creating retry tiers: %w", err)
	}

	groupOpts := []kgo.Opt{kgo.SessionTimeout(d.cfg.SessionTimeout)}
	if d.cfg.InstanceID != "" {
		groupOpts = append(groupOpts, kgo.InstanceID(d.cfg.InstanceID))
	}
	cl, err := kgo.NewClient(d.cfg.Kafka.ClientOpts("deliverer", append(groupOpts,
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(d.topics.EndpointPattern(), d.topics.RetryPattern()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(d.assigned),
		kgo.OnPartitionsRevoked(d.revoked),
		kgo.OnPartitionsLost(d.lost),
		kgo.MetadataMaxAge(10*time.Second), // discover new endpoint topics
		kgo.FetchMaxWait(250*time.Millisecond),
		// Small fetches keep memory proportional to the queue bounds: a
		// partition over its bound is paused only after its fetch arrived,
		// and a queued record keeps its whole decompressed batch alive.
		kgo.FetchMaxBytes(4<<20),
		kgo.FetchMaxPartitionBytes(64<<10),
	)...)...)
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	d.cl = cl
	d.pause.fetch = cl
	pauseCtx, pauseCancel := context.WithCancel(context.Background())
	pauseDone := make(chan struct{})
	go func() { defer close(pauseDone); d.pause.run(pauseCtx) }()
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
	select {
	case <-d.jobs.zero():
	case <-time.After(d.cfg.ShutdownTimeout):
		d.log.Warn("deliverer: shutdown deadline reached, cancelling in-flight attempts")
		hardCancel()
		<-d.jobs.zero()
	}
	commitCancel()
	<-commitDone
	finalCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.commit(finalCtx, nil)
	pauseCancel()
	<-pauseDone
	cl.Close() // leaves the group; revoke callback commits again, harmlessly
	d.log.Info("deliverer stopped")
	return nil
}

// setContexts sets the shutdown contexts; the hard shards end with hard
// or when the returned function is called. A deadlineSender aborts its
// attempts when hard ends.
func (d *Deliverer) setContexts(soft, hard context.Context) (release func()) {
	d.soft, d.hard = soft, hard
	var cancels [len(d.hardShards)]context.CancelFunc
	for i := range d.hardShards {
		d.hardShards[i], cancels[i] = context.WithCancel(hard)
	}
	stopAbort := func() bool { return false }
	if d.fast != nil {
		stopAbort = d.fast.abortOnCancel(hard)
	}
	return func() {
		stopAbort()
		for _, c := range cancels {
			c()
		}
	}
}

// queueLimit is how many fetched records one partition may hold before its
// fetching pauses: MaxQueuedPerPartition, or, while all partitions together
// hold MaxQueued or more, an equal share of MaxQueued (at least 1).
func (d *Deliverer) queueLimit() int {
	limit := d.cfg.MaxQueuedPerPartition
	if d.queued.Load() < int64(d.cfg.MaxQueued) {
		return limit
	}
	share := d.cfg.MaxQueued / max(1, int(d.nparts.Load()))
	return max(1, min(limit, share))
}

// jobCount counts started jobs; unlike a sync.WaitGroup it may be
// incremented while someone waits for zero.
type jobCount struct {
	mu     sync.Mutex
	n      int
	waitCh chan struct{} // closed when n is zero; nil while nobody waits
}

func (c *jobCount) add(delta int) {
	c.mu.Lock()
	c.n += delta
	if c.n == 0 && c.waitCh != nil {
		close(c.waitCh)
		c.waitCh = nil
	}
	c.mu.Unlock()
}

// zero returns a channel closed once no job is running.
func (c *jobCount) zero() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n == 0 {
		close(ch)
		return ch
	}
	if c.waitCh == nil {
		c.waitCh = make(chan struct{})
	}
	return c.waitCh
}

func (d *Deliverer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	d.log.Debug("deliverer: partitions assigned", "partitions", assigned)
	d.mu.Lock()
	defer d.mu.Unlock()
	var pause map[string][]int32
	for topic, ps := range assigned {
		id, isEndpoint := d.topics.EndpointID(topic)
		tier, isTier := d.tierTopics[topic]
		if !isEndpoint && !isTier {
			// A tier of another schedule (an older one, or another
			// deliverer's): its records carry their due times, so serve it
			// rather than strand them.
			tier, isTier = d.topics.RetryDelay(topic)
		}
		if !isEndpoint && !isTier {
			d.log.Warn("deliverer: assigned a topic that is neither an endpoint topic nor a configured retry tier; ignoring it", "topic", topic)
			continue
		}
		for _, p := range ps {
			tp := topicPartition{topic, p}
			part := newPartition(d, tp, id, tier)
			d.parts[tp] = part
			if ep, ok := d.reg.Get(id); isEndpoint && ok && ep.Status == registry.StatusDisabled {
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
	d.nparts.Store(int64(len(d.parts)))
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
	d.pause.resumeNow(cl, revoked) // a partition assigned again starts unpaused
}

// lost forgets partitions without committing: another member owns them.
func (d *Deliverer) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	for _, p := range d.take(lost) {
		p.drain()
		p.forget()
	}
	d.pause.resumeNow(cl, lost)
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
	d.nparts.Store(int64(len(d.parts)))
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

// endpointChanged pauses or resumes an endpoint's topic when it is disabled
// or enabled, wakes whatever waits for it, and drops the cached signer of
// the replaced endpoint version.
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
	// A disabled endpoint's partitions stop fetching; enabled again, they
	// resume. Decided under d.mu, so a partition revoked meanwhile is
	// either not seen here or has this decision dropped by the revocation.
	pause := cur.Status == registry.StatusDisabled
	change := pause || (cur.Status == registry.StatusActive && old != nil && old.Status == registry.StatusDisabled)
	d.mu.Lock()
	var ps []*partition
	for tp, p := range d.parts {
		if tp.topic == topic {
			ps = append(ps, p)
			if change {
				d.pause.set(tp, pause)
			}
		}
	}
	d.mu.Unlock()
	if v, ok := d.eps.Load(cur.ID); ok {
		v.(*endpointState).notify()
	}
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
