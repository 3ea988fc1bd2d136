package deliverer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	names := map[class]string{success: "success", retryable: "retryable", throttled: "throttled", gone: "gone", permanent: "permanent"}
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	for _, tc := range []struct {
		res  Result
		want class
	}{
		{Result{Status: 200}, success},
		{Result{Status: 201}, success},
		{Result{Status: 204}, success},
		{Result{Status: 299}, success},
		{Result{Status: 200, RetryAfter: time.Minute}, success},
		{Result{Status: 301}, permanent}, // a redirect is an answer, not followed
		{Result{Status: 302}, permanent},
		{Result{Status: 304}, permanent},
		{Result{Status: 400}, permanent},
		{Result{Status: 401}, permanent},
		{Result{Status: 404}, permanent},
		{Result{Status: 404, RetryAfter: time.Minute}, permanent},
		{Result{Status: 408}, retryable},
		{Result{Status: 409}, permanent},
		{Result{Status: 409, RetryAfter: 2 * time.Second}, throttled}, // pkg/webhook: an attempt still running
		{Result{Status: 410}, gone},
		{Result{Status: 410, RetryAfter: time.Minute}, gone},
		{Result{Status: 422}, permanent},
		{Result{Status: 429}, throttled},
		{Result{Status: 429, RetryAfter: time.Minute}, throttled},
		{Result{Status: 500}, retryable},
		{Result{Status: 500, RetryAfter: time.Minute}, retryable},
		{Result{Status: 502}, retryable},
		{Result{Status: 503}, retryable},
		{Result{Status: 503, RetryAfter: 30 * time.Second}, throttled},
		{Result{Status: 504}, retryable},
		{Result{Status: 599}, retryable},
		{Result{Status: 100}, permanent},
		{Result{Err: refused}, retryable},
		{Result{Err: context.DeadlineExceeded}, retryable},
		{Result{Status: 200, Err: refused}, retryable}, // a transport error wins
		{Result{}, retryable},                          // no answer at all
	} {
		if got := classify(tc.res); got != tc.want {
			t.Errorf("classify(status %d, retry-after %v, err %v) = %s, want %s", tc.res.Status, tc.res.RetryAfter, tc.res.Err, names[got], names[tc.want])
		}
	}
}

func TestDescribeAndAttemptLabel(t *testing.T) {
	timeout := fmt.Errorf("post: %w", context.DeadlineExceeded)
	for _, tc := range []struct {
		res         Result
		desc, label string
	}{
		{Result{Status: 200}, "HTTP 200 OK", "2xx"},
		{Result{Status: 302}, "HTTP 302 Found", "3xx"},
		{Result{Status: 429}, "HTTP 429 Too Many Requests", "4xx"},
		{Result{Status: 503}, "HTTP 503 Service Unavailable", "5xx"},
		{Result{Err: timeout}, "post: context deadline exceeded", "timeout"},
		{Result{Err: errors.New("connection refused")}, "connection refused", "error"},
		{Result{}, "HTTP 0 ", "error"},
	} {
		if got := describe(tc.res); got != tc.desc {
			t.Errorf("describe(%+v) = %q, want %q", tc.res, got, tc.desc)
		}
		if got := attemptLabel(tc.res); got != tc.label {
			t.Errorf("attemptLabel(%+v) = %q, want %q", tc.res, got, tc.label)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"0", 0},
		{"1", time.Second},
		{"120", 2 * time.Minute},
		{"86400", 24 * time.Hour},
		{"-5", 0},
		{"", 0},
		{"soon", 0},
		{"1.5", 0},
		{"5s", 0},
		{" 5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{now.Add(time.Hour).Format(time.ANSIC), time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0}, // in the past
		{now.Format(http.TimeFormat), 0},
		{"Sun, 01 Mar 2026 12:00:00", 0}, // no zone: not an HTTP date
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// parseRetryAfter multiplies the seconds by time.Second without bounds: a
// huge value overflows int64 nanoseconds and comes out as an arbitrary,
// possibly negative, duration.
func TestParseRetryAfterHugeValues(t *testing.T) {
	now := time.Now()
	for _, v := range []string{"9223372037", "99999999999", "9223372036854775807"} {
		if got := parseRetryAfter(v, now); got <= 0 || got < 24*time.Hour {
			t.Errorf("parseRetryAfter(%q) = %v, want a large positive duration (or a documented cap)", v, got)
		}
	}
}
