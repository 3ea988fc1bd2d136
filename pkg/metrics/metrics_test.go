package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/pkg/metrics"
)

func newCounterVec(help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookstream_test_total", Help: help}, labels)
}

func TestRegisterReturnsTheExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := metrics.Register(reg, newCounterVec("h", "result"))
	second := metrics.Register(reg, newCounterVec("h", "result")) // an equal collector: a second stage instance
	if second != first {
		t.Fatal("Register of an equal collector did not return the one already registered")
	}
	first.WithLabelValues("ok").Inc()
	second.WithLabelValues("ok").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Errorf("gathered %v, want one series counting 2 (both instances count into it)", mfs)
	}

	// Plain metrics (not vectors) too.
	g1 := metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookstream_test_gauge", Help: "g"}))
	g2 := metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookstream_test_gauge", Help: "g"}))
	if g1 != g2 {
		t.Error("Register of an equal gauge returned a new collector")
	}
}

func TestRegisterNilRegisterer(t *testing.T) {
	c := newCounterVec("h", "result")
	if got := metrics.Register(nil, c); got != c {
		t.Error("Register(nil, c) did not return c")
	}
	// And c stays unregistered: it can go to a real registry after.
	reg := prometheus.NewRegistry()
	if got := metrics.Register(reg, c); got != c {
		t.Error("Register after Register(nil) did not return c")
	}
}

func TestRegisterPanicsOnConflict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second prometheus.Collector
	}{
		{"other labels", newCounterVec("h", "outcome")},
		{"other help", newCounterVec("other help", "result")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			metrics.Register(reg, newCounterVec("h", "result"))
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("Register of a conflicting collector did not panic")
				}
				if err, ok := r.(error); !ok || err.Error() == "" {
					t.Errorf("panic value %v (%T), want the registration error", r, r)
				}
			}()
			metrics.Register(reg, tc.second)
		})
	}
}

// An equal descriptor registered by a collector of another type: the
// existing collector is not a C, so Register panics rather than hand back a
// collector nobody gathers.
func TestRegisterPanicsOnTypeMismatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.Register(reg, newCounterVec("h")) // a vector without labels: the same descriptor as a plain counter
	defer func() {
		if recover() == nil {
			t.Error("Register of a Counter over a CounterVec with the same descriptor did not panic")
		}
	}()
	metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "hookstream_test_total", Help: "h"}))
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := metrics.Register(reg, newCounterVec("h", "result"))
	c.WithLabelValues("ok").Add(3)
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `hookstream_test_total{result="ok"} 3`) {
		t.Errorf("GET /metrics = %d\n%s", resp.StatusCode, body)
	}
}
