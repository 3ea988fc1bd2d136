package registry

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Endpoint statuses.
const (
	StatusActive   = "active"   // receives deliveries
	StatusDisabled = "disabled" // deliveries paused; events stay in its topic
	StatusDeleted  = "deleted"  // deliveries stopped; topic removed after a grace period
)

// Endpoint is one customer webhook endpoint, the value of the registry topic
// (schemas/endpoint.avsc). Values handed out by a Registry are shared and
// must not be modified; use Clone.
type Endpoint struct {
	ID           string   `avro:"id" json:"id"`
	TenantID     string   `avro:"tenant_id" json:"tenant_id"`
	URL          string   `avro:"url" json:"url"`
	EventTypes   []string `avro:"event_types" json:"event_types"`
	Secrets      []string `avro:"secrets" json:"-"`
	Status       string   `avro:"status" json:"status"`
	StatusReason string   `avro:"status_reason" json:"status_reason,omitempty"`
	Partitions   int32    `avro:"partitions" json:"partitions"`
	Ordered      bool     `avro:"ordered" json:"ordered"`
	RateLimit    float64  `avro:"rate_limit" json:"rate_limit,omitempty"`
	MaxInFlight  int32    `avro:"max_in_flight" json:"max_in_flight,omitempty"`
	Description  string   `avro:"description" json:"description,omitempty"`
	// RetryScheduleMS is the endpoint's own retry schedule in milliseconds
	// (empty = the deliverer's).
	RetryScheduleMS []int64    `avro:"retry_schedule_ms" json:"retry_schedule_ms,omitempty"`
	CreatedAt       time.Time  `avro:"created_at" json:"created_at"`
	UpdatedAt       time.Time  `avro:"updated_at" json:"updated_at"`
	DeletedAt       *time.Time `avro:"deleted_at" json:"deleted_at,omitempty"`
}

// Clone returns a deep copy that the caller may modify.
func (e *Endpoint) Clone() *Endpoint {
	c := *e
	c.EventTypes = append([]string(nil), e.EventTypes...)
	c.Secrets = append([]string(nil), e.Secrets...)
	c.RetryScheduleMS = append([]int64(nil), e.RetryScheduleMS...)
	if e.DeletedAt != nil {
		t := *e.DeletedAt
		c.DeletedAt = &t
	}
	return &c
}

// Active reports whether the endpoint receives deliveries.
func (e *Endpoint) Active() bool { return e.Status == StatusActive }

// Subscribes reports whether the endpoint subscribed to eventType.
func (e *Endpoint) Subscribes(eventType string) bool {
	for _, p := range e.EventTypes {
		if MatchPattern(p, eventType) {
			return true
		}
	}
	return false
}

// MatchPattern reports whether a subscription pattern matches an event type.
// Patterns are an exact type ("payment.succeeded"), a category
// ("payment.*") or everything ("*").
func MatchPattern(pattern, eventType string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		cat := pattern[:len(pattern)-1] // keep the dot
		return strings.HasPrefix(eventType, cat) && len(eventType) > len(cat)
	default:
		return pattern == eventType
	}
}

// ValidationError says which field of an endpoint is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidatePattern checks one subscription pattern against the known event
// types (nil known = any well-formed pattern).
func ValidatePattern(p string, known []string) error {
	if p == "*" {
		return nil
	}
	if p == "" || strings.ContainsAny(p, " \t\n") {
		return invalid("event_types", "pattern %q is empty or has white space", p)
	}
	if strings.Contains(strings.TrimSuffix(p, ".*"), "*") {
		return invalid("event_types", "pattern %q: '*' is only allowed alone or as a whole last segment (category.*)", p)
	}
	if known == nil {
		return nil
	}
	for _, k := range known {
		if MatchPattern(p, k) {
			return nil
		}
	}
	return invalid("event_types", "pattern %q matches no known event type", p)
}

// ValidateURL checks an endpoint URL: absolute http or https with a host.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url", "%v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("url", "scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return invalid("url", "no host in %q", raw)
	}
	if u.User != nil {
		return invalid("url", "credentials in the URL are not allowed")
	}
	return nil
}
