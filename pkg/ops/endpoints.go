package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// EndpointChange lists the endpoint fields to change; nil fields stay as
// they are.
type EndpointChange struct {
	URL         *string
	EventTypes  []string // the whole new subscription list; nil = unchanged
	Partitions  *int32   // can only grow
	RateLimit   *float64 // requests per second, 0 = unlimited
	MaxInFlight *int32   // 0 = the deliverer's default
	Ordered     *bool
	// RetrySchedule is the endpoint's own delays before each retry; an
	// empty (non-nil) slice returns it to the deliverer's schedule.
	RetrySchedule *[]time.Duration
	Description   *string
}

// IsZero reports whether c changes nothing.
func (c EndpointChange) IsZero() bool {
	return c.URL == nil && c.EventTypes == nil && c.Partitions == nil && c.RateLimit == nil &&
		c.MaxInFlight == nil && c.Ordered == nil && c.RetrySchedule == nil && c.Description == nil
}

// Apply writes c into e.
func (c EndpointChange) Apply(e *registry.Endpoint) error {
	if c.URL != nil {
		e.URL = *c.URL
	}
	if c.EventTypes != nil {
		e.EventTypes = slices.Clone(c.EventTypes)
	}
	if c.Partitions != nil {
		e.Partitions = *c.Partitions
	}
	if c.RateLimit != nil {
		e.RateLimit = *c.RateLimit
	}
	if c.MaxInFlight != nil {
		e.MaxInFlight = *c.MaxInFlight
	}
	if c.Ordered != nil {
		e.Ordered = *c.Ordered
	}
	if c.RetrySchedule != nil {
		ms, err := RetryScheduleMS(*c.RetrySchedule)
		if err != nil {
			return err
		}
		e.RetryScheduleMS = ms
	}
	if c.Description != nil {
		e.Description = *c.Description
	}
	return nil
}

// RetryScheduleMS converts retry delays to the registry's milliseconds. Each
// delay must be positive and a whole number of milliseconds.
func RetryScheduleMS(s []time.Duration) ([]int64, error) {
	ms := make([]int64, 0, len(s))
	for i, d := range s {
		if d <= 0 || d%time.Millisecond != 0 {
			return nil, &registry.ValidationError{Field: "retry_schedule_ms", Reason: fmt.Sprintf("delay %d is %v: delays must be positive whole milliseconds", i+1, d)}
		}
		ms = append(ms, d.Milliseconds())
	}
	return ms, nil
}

// UpdateEndpoint applies c to the endpoint id, as reg sees it now, and
// writes it through adm. Like registry.Admin.SetStatus it is a
// read-modify-write: two operators changing one endpoint at once resolve
// last-write-wins.
func UpdateEndpoint(ctx context.Context, adm *registry.Admin, reg *registry.Registry, id string, c EndpointChange) (*registry.Endpoint, error) {
	if c.IsZero() {
		return nil, errors.New("ops: nothing to change")
	}
	cur, ok := reg.Get(id)
	if !ok || cur.Status == registry.StatusDeleted {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, id)
	}
	next := cur.Clone()
	if err := c.Apply(next); err != nil {
		return nil, err
	}
	return adm.Update(ctx, next)
}

// Rotation says how RotateSecret changes an endpoint's signing secrets.
// Every secret of an endpoint signs each delivery (one v1 signature per
// secret, newest first), so a receiver that trusts any one of them verifies.
type Rotation struct {
	// Secret is the new secret (whsec_…); empty = a new random one, unless
	// DropOld alone is asked.
	Secret string
	// DropOld ends a rotation: only the newest secret is kept. With Secret
	// set as well, Secret replaces every secret at once (a leaked secret):
	// receivers that do not trust it yet fail verification until they do.
	DropOld bool
}

// RotateSecret changes the signing secrets of endpoint id:
//
//   - Rotation{}: a new random secret goes first, the old ones keep signing;
//   - Rotation{Secret: s}: s goes first, the old ones keep signing;
//   - Rotation{DropOld: true}: only the newest secret is kept;
//   - Rotation{Secret: s, DropOld: true}: s is the only secret.
//
// It returns the endpoint as written and the secret added ("" if none). An
// endpoint that already has the result is not written again.
func RotateSecret(ctx context.Context, adm *registry.Admin, reg *registry.Registry, id string, r Rotation) (*registry.Endpoint, string, error) {
	cur, ok := reg.Get(id)
	if !ok || cur.Status == registry.StatusDeleted {
		return nil, "", fmt.Errorf("%w: %s", registry.ErrNotFound, id)
	}
	next := cur.Clone()
	var added string
	if r.Secret != "" || !r.DropOld {
		var sec webhook.Secret
		var err error
		if r.Secret != "" {
			sec, err = webhook.ParseSecret(r.Secret)
		} else {
			sec, err = webhook.NewSecret()
		}
		if err != nil {
			return nil, "", err
		}
		added = sec.String()
		for _, s := range cur.Secrets {
			if old, err := webhook.ParseSecret(s); err == nil && old == sec {
				if !r.DropOld {
					return nil, "", &registry.ValidationError{Field: "secrets", Reason: "the endpoint already has this secret"}
				}
			}
		}
		next.Secrets = append([]string{added}, cur.Secrets...)
	}
	if r.DropOld && len(next.Secrets) > 1 {
		next.Secrets = next.Secrets[:1]
	}
	if slices.Equal(next.Secrets, cur.Secrets) {
		return cur, "", nil
	}
	ep, err := adm.Update(ctx, next)
	if err != nil {
		return nil, "", err
	}
	return ep, added, nil
}
