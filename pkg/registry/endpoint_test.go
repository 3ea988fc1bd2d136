package registry_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/registry"
)

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, eventType string
		want               bool
	}{
		// Exact types.
		{"payment.succeeded", "payment.succeeded", true},
		{"payment.succeeded", "payment.failed", false},
		{"payment.succeeded", "payment.succeeded.v2", false},
		{"payment.succeeded", "payment", false},
		{"payment.succeeded", "", false},
		// Categories.
		{"payment.*", "payment.succeeded", true},
		{"payment.*", "payment.failed", true},
		{"payment.*", "payment.", false}, // the category alone, nothing after the dot
		{"payment.*", "payment", false},  // no dot at all
		{"payment.*", "paymentx.succeeded", false},
		{"payment.*", "xpayment.succeeded", false},
		{"payment.*", "order.paid", false},
		{"payment.*", "", false},
		{"user.*", "user.email_verified", true},
		{"organization.*", "organization.member_added", true},
		// Everything.
		{"*", "payment.succeeded", true},
		{"*", "order.paid", true},
		{"*", "", true},
		// Near-misses of the wildcard syntax never act as wildcards.
		{"payment*", "payment.succeeded", false},
		{"payment.", "payment.succeeded", false},
		{"*.succeeded", "payment.succeeded", false},
		{"", "payment.succeeded", false},
		{"", "", true}, // exact comparison; ValidatePattern rejects the empty pattern
	} {
		if got := registry.MatchPattern(tc.pattern, tc.eventType); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.eventType, got, tc.want)
		}
	}
}

func TestSubscribes(t *testing.T) {
	e := &registry.Endpoint{EventTypes: []string{"order.created", "payment.*"}}
	for _, tc := range []struct {
		eventType string
		want      bool
	}{
		{"order.created", true},
		{"order.paid", false},
		{"payment.refunded", true},
		{"paymentx.refunded", false},
		{"user.created", false},
	} {
		if got := e.Subscribes(tc.eventType); got != tc.want {
			t.Errorf("Subscribes(%q) with %v = %v, want %v", tc.eventType, e.EventTypes, got, tc.want)
		}
	}
	if (&registry.Endpoint{}).Subscribes("order.created") {
		t.Error("an endpoint without subscriptions subscribes to order.created")
	}
	if !(&registry.Endpoint{EventTypes: []string{"*"}}).Subscribes("anything.at_all") {
		t.Error(`"*" does not subscribe to anything.at_all`)
	}
}

func TestActive(t *testing.T) {
	for status, want := range map[string]bool{
		registry.StatusActive: true, registry.StatusDisabled: false, registry.StatusDeleted: false, "": false,
	} {
		if got := (&registry.Endpoint{Status: status}).Active(); got != want {
			t.Errorf("Active() with status %q = %v, want %v", status, got, want)
		}
	}
}

// validationField returns the Field of the *ValidationError err wraps, and
// fails the test if it wraps none.
func validationField(t *testing.T, err error) string {
	t.Helper()
	var ve *registry.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *registry.ValidationError", err, err)
	}
	if got := ve.Error(); !strings.HasPrefix(got, ve.Field+": ") || ve.Reason == "" {
		t.Errorf("Error() = %q, want %q followed by a reason", got, ve.Field+": ")
	}
	return ve.Field
}

func TestValidatePattern(t *testing.T) {
	known := []string{"order.created", "order.paid", "payment.failed", "payment.succeeded"}
	for _, tc := range []struct {
		pattern string
		known   []string
		ok      bool
		reason  string // a part of the error message
	}{
		{"*", known, true, ""},
		{"*", nil, true, ""},
		{"payment.succeeded", known, true, ""},
		{"payment.*", known, true, ""},
		{"order.*", known, true, ""},
		{"user.*", nil, true, ""}, // nil known: any well-formed pattern
		{"anything", nil, true, ""},

		{"", known, false, "empty"},
		{"", nil, false, "empty"},
		{"payment .succeeded", known, false, "white space"},
		{"payment.*\n", nil, false, "white space"},
		{"payment*", nil, false, "'*'"},
		{"*.succeeded", nil, false, "'*'"},
		{"payment.*.x", nil, false, "'*'"},
		{"**", nil, false, "'*'"},
		{"payment.**", nil, false, "'*'"},
		{"user.*", known, false, "matches no known event type"},
		{"payment.refunded", known, false, "matches no known event type"},
		{"payment.", known, false, "matches no known event type"},
		{"paymentx.*", known, false, "matches no known event type"},
	} {
		err := registry.ValidatePattern(tc.pattern, tc.known)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidatePattern(%q, known=%v) = %v, want nil", tc.pattern, tc.known != nil, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidatePattern(%q, known=%v) = nil, want an error about %q", tc.pattern, tc.known != nil, tc.reason)
			continue
		}
		if f := validationField(t, err); f != "event_types" {
			t.Errorf("ValidatePattern(%q): Field = %q, want event_types", tc.pattern, f)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ValidatePattern(%q) = %q, want it to mention %q", tc.pattern, err, tc.reason)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		url    string
		ok     bool
		reason string
	}{
		{"https://example.com/webhooks", true, ""},
		{"http://127.0.0.1:8081/webhooks", true, ""},
		{"http://[::1]:8080/", true, ""},
		{"https://example.com", true, ""},
		{"HTTPS://EXAMPLE.COM/x", true, ""}, // url.Parse lower-cases the scheme

		{"", false, "scheme"},
		{"example.com/webhooks", false, "scheme"},
		{"ftp://example.com/", false, `"ftp"`},
		{"javascript:alert(1)", false, "scheme"},
		{"https://", false, "no host"},
		{"https:///path", false, "no host"},
		{"http://user:pass@example.com/", false, "credentials"},
		{"http://user@example.com/", false, "credentials"},
		{"http://exa mple.com/", false, "url"},
		{"http://example.com/%zz", false, "url"},
	} {
		err := registry.ValidateURL(tc.url)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidateURL(%q) = %v, want nil", tc.url, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateURL(%q) = nil, want an error about %q", tc.url, tc.reason)
			continue
		}
		if f := validationField(t, err); f != "url" {
			t.Errorf("ValidateURL(%q): Field = %q, want url", tc.url, f)
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ValidateURL(%q) = %q, want it to mention %q", tc.url, err, tc.reason)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	deleted := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	orig := &registry.Endpoint{
		ID: "ep_1", TenantID: "t1", URL: "https://example.com/",
		EventTypes: []string{"order.*", "payment.succeeded"}, Secrets: []string{"whsec_a", "whsec_b"},
		Status: registry.StatusDeleted, Partitions: 3, Ordered: true, RateLimit: 2.5, MaxInFlight: 4,
		RetryScheduleMS: []int64{1000, 60000}, Description: "d",
		CreatedAt: deleted.Add(-time.Hour), UpdatedAt: deleted, DeletedAt: &deleted,
	}
	c := orig.Clone()
	if c == orig {
		t.Fatal("Clone returned the same pointer")
	}
	if c.ID != orig.ID || c.TenantID != orig.TenantID || c.Partitions != 3 || !c.Ordered || c.RateLimit != 2.5 ||
		c.MaxInFlight != 4 || c.Description != "d" || !c.CreatedAt.Equal(orig.CreatedAt) || !c.DeletedAt.Equal(deleted) ||
		!slices.Equal(c.EventTypes, orig.EventTypes) || !slices.Equal(c.Secrets, orig.Secrets) ||
		!slices.Equal(c.RetryScheduleMS, orig.RetryScheduleMS) {
		t.Fatalf("Clone() = %+v, want a copy of %+v", c, orig)
	}
	c.EventTypes[0] = "changed"
	c.Secrets[1] = "changed"
	c.RetryScheduleMS[0] = -1
	*c.DeletedAt = time.Time{}
	c.EventTypes = append(c.EventTypes, "appended")
	if orig.EventTypes[0] != "order.*" || orig.Secrets[1] != "whsec_b" || orig.RetryScheduleMS[0] != 1000 ||
		!orig.DeletedAt.Equal(deleted) || len(orig.EventTypes) != 2 {
		t.Errorf("modifying the clone changed the original: %+v", orig)
	}

	// nil slices and pointers stay usable.
	bare := (&registry.Endpoint{ID: "ep_2"}).Clone()
	if bare.DeletedAt != nil || len(bare.EventTypes) != 0 || len(bare.Secrets) != 0 || len(bare.RetryScheduleMS) != 0 {
		t.Errorf("Clone of a bare endpoint = %+v", bare)
	}
}
