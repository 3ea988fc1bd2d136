package deliverer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// hangingEndpoint is an endpoint whose server answers only when the test
// ends; arrived gets a value as each request comes in.
func hangingEndpoint(t *testing.T) (ep *registry.Endpoint, arrived <-chan struct{}) {
	t.Helper()
	got := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return &registry.Endpoint{ID: "ep_1", URL: srv.URL + "/hooks", Secrets: []string{secret.String()}, Status: registry.StatusActive}, got
}

// With the default Sender the deliverer's attempts carry no context of
// their own: the attempt timeout still ends a request that gets no answer.
func TestFastAttemptTimeout(t *testing.T) {
	d := newTestDeliverer(t, func(c *Config) { c.AllowPrivateTargets = true; c.AttemptTimeout = 200 * time.Millisecond })
	if d.fast == nil {
		t.Fatal("the default Sender does not take deadlines as values")
	}
	ep, _ := hangingEndpoint(t)
	env := testEnvelope(t, d.cat)
	start := time.Now()
	res := d.attempt(ep, env, []byte("{}"), 1)
	if !errors.Is(res.Err, context.DeadlineExceeded) || attemptLabel(res) != "timeout" {
		t.Fatalf("attempt against a silent server = %+v (label %q), want a timeout", res, attemptLabel(res))
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("the 200ms attempt returned after %v", el)
	}
}

// The shutdown deadline (the hard context) ends attempts in flight on the
// default Sender, long before their own timeout, and no attempt starts
// after it.
func TestFastAttemptAbortedAtShutdownDeadline(t *testing.T) {
	d := newTestDeliverer(t, func(c *Config) { c.AllowPrivateTargets = true; c.AttemptTimeout = time.Hour })
	hard, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	t.Cleanup(d.setContexts(context.Background(), hard))
	ep, arrived := hangingEndpoint(t)
	env := testEnvelope(t, d.cat)
	done := make(chan Result, 1)
	go func() { done <- d.attempt(ep, env, []byte("{}"), 1) }()
	<-arrived
	cancel()
	select {
	case res := <-done:
		if !errors.Is(res.Err, context.Canceled) || res.Status != 0 {
			t.Fatalf("attempt cut by the shutdown deadline = %+v, want an error wrapping context.Canceled", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attempt still running 10s after the shutdown deadline")
	}
	if res := d.attempt(ep, env, []byte("{}"), 1); !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("attempt after the shutdown deadline = %+v, want it refused", res)
	}
}
