package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/ids"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// Limits on what an endpoint may ask for.
const (
	MaxPartitions   = 64                   // partitions of one endpoint topic
	MaxRetries      = 50                   // entries of retry_schedule_ms
	MaxRetryDelayMS = 7 * 24 * 3600 * 1000 // one retry delay
)

// Admin writes the registry: it creates and removes endpoint topics and
// writes endpoint records. Reads go through the Registry it is given, so a
// read-modify-write (SetStatus, Delete) sees the latest state that Registry
// has followed; two admins racing on one endpoint resolve last-write-wins.
type Admin struct {
	cfg kafka.Config
	cl  *kgo.Client
	adm *kadm.Client
	cat *codec.Catalog
	reg *Registry
	now func() time.Time
}

// NewAdmin returns an Admin writing through cl (a producer with acks=all,
// the franz-go default) and reading through reg.
func NewAdmin(cfg kafka.Config, cl *kgo.Client, cat *codec.Catalog, reg *Registry) *Admin {
	return &Admin{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), cat: cat, reg: reg, now: time.Now}
}

// Create validates spec, fills in id, secret, status and times where spec
// leaves them empty, creates the endpoint's topic, writes the record, and
// waits until reg sees it.
func (a *Admin) Create(ctx context.Context, spec Endpoint) (*Endpoint, error) {
	eps, err := a.CreateBatch(ctx, []Endpoint{spec})
	if err != nil {
		return nil, err
	}
	return eps[0], nil
}

// CreateBatch is Create for many endpoints at once: every spec is validated
// first (nothing is written if one is invalid), the topics are created in
// few requests and the records produced together.
func (a *Admin) CreateBatch(ctx context.Context, specs []Endpoint) ([]*Endpoint, error) {
	now := a.now().UTC().Truncate(time.Millisecond)
	eps := make([]*Endpoint, len(specs))
	seen := map[string]bool{}
	topics := make([]kafka.TopicSpec, len(specs))
	for i, spec := range specs {
		e := spec.Clone()
		if e.ID == "" {
			e.ID = ids.New("ep_", now)
		}
		if len(e.Secrets) == 0 {
			s, err := webhook.NewSecret()
			if err != nil {
				return nil, err
			}
			e.Secrets = []string{s.String()}
		}
		if e.Status == "" {
			e.Status = StatusActive
		}
		if e.Partitions == 0 {
			e.Partitions = 1
		}
		e.CreatedAt, e.UpdatedAt, e.DeletedAt = now, now, nil
		if err := a.validate(e); err != nil {
			if len(specs) > 1 {
				return nil, fmt.Errorf("endpoint %d: %w", i, err)
			}
			return nil, err
		}
		if _, ok := a.reg.Get(e.ID); ok || seen[e.ID] {
			return nil, invalid("id", "endpoint %s already exists", e.ID)
		}
		seen[e.ID] = true
		eps[i] = e
		topics[i] = kafka.TopicSpec{Name: a.cfg.Topics().Endpoint(e.ID), Partitions: e.Partitions}
	}
	if err := a.cfg.EnsureTopics(ctx, a.adm, topics...); err != nil {
		return nil, err
	}
	if err := a.writeAll(ctx, eps); err != nil {
		return nil, err
	}
	return eps, nil
}

// Update replaces the mutable fields of an existing endpoint (url,
// subscriptions, secrets, limits, description) and writes it. Partitions can
// only grow.
func (a *Admin) Update(ctx context.Context, e *Endpoint) (*Endpoint, error) {
	cur, ok := a.reg.Get(e.ID)
	if !ok || cur.Status == StatusDeleted {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, e.ID)
	}
	next := e.Clone()
	next.TenantID, next.CreatedAt, next.Status, next.StatusReason, next.DeletedAt = cur.TenantID, cur.CreatedAt, cur.Status, cur.StatusReason, nil
	next.UpdatedAt = a.now().UTC().Truncate(time.Millisecond)
	if next.Partitions == 0 {
		next.Partitions = cur.Partitions
	}
	if next.Partitions < cur.Partitions {
		return nil, invalid("partitions", "can only grow (now %d, asked %d)", cur.Partitions, next.Partitions)
	}
	if err := a.validate(next); err != nil {
		return nil, err
	}
	if next.Partitions > cur.Partitions {
		resp, err := a.adm.UpdatePartitions(ctx, int(next.Partitions), a.cfg.Topics().Endpoint(e.ID))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("registry: growing partitions of %s: %w", e.ID, err)
		}
	}
	return next, a.write(ctx, next)
}

// SetStatus sets an endpoint active or disabled, with a reason.
func (a *Admin) SetStatus(ctx context.Context, id, status, reason string) (*Endpoint, error) {
	if status != StatusActive && status != StatusDisabled {
		return nil, invalid("status", "must be %s or %s, got %q", StatusActive, StatusDisabled, status)
	}
	cur, ok := a.reg.Get(id)
	if !ok || cur.Status == StatusDeleted {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	next := cur.Clone()
	next.Status, next.StatusReason = status, reason
	next.UpdatedAt = a.now().UTC().Truncate(time.Millisecond)
	return next, a.write(ctx, next)
}

// Delete marks an endpoint deleted: deliveries stop at once. Its topic and
// record are removed by Purge once the grace period has passed.
func (a *Admin) Delete(ctx context.Context, id string) error {
	cur, ok := a.reg.Get(id)
	if !ok || cur.Status == StatusDeleted {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	next := cur.Clone()
	now := a.now().UTC().Truncate(time.Millisecond)
	next.Status, next.UpdatedAt, next.DeletedAt = StatusDeleted, now, &now
	return a.write(ctx, next)
}

// Purge removes the topic and writes the tombstone of every endpoint deleted
// grace or longer ago. It returns the ids purged.
func (a *Admin) Purge(ctx context.Context, grace time.Duration) ([]string, error) {
	var purged []string
	cutoff := a.now().Add(-grace)
	for _, e := range a.reg.List("") {
		if e.Status != StatusDeleted || e.DeletedAt == nil || e.DeletedAt.After(cutoff) {
			continue
		}
		topic := a.cfg.Topics().Endpoint(e.ID)
		resp, err := a.adm.DeleteTopic(ctx, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return purged, fmt.Errorf("registry: deleting topic %s: %w", topic, err)
		}
		rec := &kgo.Record{Topic: a.cfg.Topics().Endpoints(), Key: []byte(e.ID)}
		if err := a.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return purged, fmt.Errorf("registry: tombstone for %s: %w", e.ID, err)
		}
		purged = append(purged, e.ID)
	}
	return purged, nil
}

func (a *Admin) validate(e *Endpoint) error {
	switch {
	case e.TenantID == "":
		return invalid("tenant_id", "is required")
	case len(e.EventTypes) == 0:
		return invalid("event_types", "subscribe to at least one pattern (exact type, category.* or *)")
	case e.Partitions < 1 || e.Partitions > MaxPartitions:
		return invalid("partitions", "must be 1..%d, got %d", MaxPartitions, e.Partitions)
	case e.RateLimit < 0:
		return invalid("rate_limit", "must be >= 0")
	case e.MaxInFlight < 0:
		return invalid("max_in_flight", "must be >= 0")
	}
	if !validID(e.ID) {
		return invalid("id", "%q: use 1-100 characters of A-Z a-z 0-9 _ -", e.ID)
	}
	if err := ValidateURL(e.URL); err != nil {
		return err
	}
	known := a.cat.Types()
	for _, p := range e.EventTypes {
		if err := ValidatePattern(p, known); err != nil {
			return err
		}
	}
	if len(e.Secrets) == 0 {
		return invalid("secrets", "at least one signing secret is required")
	}
	for i, s := range e.Secrets {
		if _, err := webhook.ParseSecret(s); err != nil {
			return invalid(fmt.Sprintf("secrets[%d]", i), "%v", err)
		}
	}
	if len(e.RetryScheduleMS) > MaxRetries {
		return invalid("retry_schedule_ms", "at most %d retries, got %d", MaxRetries, len(e.RetryScheduleMS))
	}
	for i, ms := range e.RetryScheduleMS {
		if ms <= 0 || ms > MaxRetryDelayMS {
			return invalid("retry_schedule_ms", "delay %d is %d ms; each must be 1 ms to 7 days", i, ms)
		}
	}
	e.EventTypes = slices.Compact(slices.Sorted(slices.Values(e.EventTypes)))
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// write produces the record and waits until the registry view has it, so a
// caller's next read (and the services following the topic) see the change.
func (a *Admin) write(ctx context.Context, e *Endpoint) error {
	// UpdatedAt identifies this version for the wait: keep it strictly
	// increasing even for two writes in one millisecond.
	if cur, ok := a.reg.Get(e.ID); ok && !e.UpdatedAt.After(cur.UpdatedAt) {
		e.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond)
	}
	return a.writeAll(ctx, []*Endpoint{e})
}

// writeAll produces the records (acks=all) and waits until the registry
// view has every one of them.
func (a *Admin) writeAll(ctx context.Context, eps []*Endpoint) error {
	recs := make([]*kgo.Record, len(eps))
	for i, e := range eps {
		b, err := a.cat.Marshal(RecordName, e)
		if err != nil {
			return fmt.Errorf("registry: encoding endpoint %s: %w", e.ID, err)
		}
		recs[i] = &kgo.Record{Topic: a.cfg.Topics().Endpoints(), Key: []byte(e.ID), Value: b}
	}
	if err := a.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("registry: writing endpoints: %w", err)
	}
	return a.reg.WaitFor(ctx, func(r *Registry) bool {
		for _, e := range eps {
			got, ok := r.Get(e.ID)
			if !ok || !got.UpdatedAt.Equal(e.UpdatedAt) || got.Status != e.Status {
				return false
			}
		}
		return true
	})
}
