package kafka

import (
	"testing"
	"time"
)

func TestRetryDelayInvertsRetry(t *testing.T) {
	tp := Topics{Prefix: "webhooks"}
	for _, d := range []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 24 * time.Hour, 1500 * time.Millisecond, 90 * time.Second} {
		got, ok := tp.RetryDelay(tp.Retry(d))
		if !ok || got != d {
			t.Errorf("RetryDelay(Retry(%v)) = %v, %v", d, got, ok)
		}
	}
	for _, bad := range []string{"webhooks.retry.", "webhooks.retry.5", "webhooks.retry.05s", "webhooks.retry.-5s", "webhooks.retry.5d",
		"webhooks.endpoint.ep_1", "other.retry.5s", "webhooks.retry.5s.x"} {
		if d, ok := tp.RetryDelay(bad); ok {
			t.Errorf("RetryDelay(%q) = %v, want not a tier", bad, d)
		}
	}
}
