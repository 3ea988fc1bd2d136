package main

import (
	"context"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The latency split reads only what happened between two scrapes.
func TestStageLatenciesBetweenScrapes(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookstream_deliverer_fetch_delay_seconds",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	reg.MustRegister(h)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	for range 1000 {
		h.Observe(5) // before the window: must not count
	}
	a, err := scrape(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		h.Observe(0.010) // bucket (8 ms, 16 ms]
	}
	h.Observe(0.100)
	b, err := scrape(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	st := stageLatencies(a, b)
	l, ok := st["to_deliverer"]
	if !ok || len(st) != 1 {
		t.Fatalf("stages = %v, want only to_deliverer", st)
	}
	if l.Count != 101 {
		t.Errorf("count = %v, want 101", l.Count)
	}
	if want := 1000 * (100*0.010 + 0.100) / 101; math.Abs(l.MeanMs-want) > 1e-6 {
		t.Errorf("mean = %v ms, want %v", l.MeanMs, want)
	}
	// The 99th percentile of 101 samples is the 99.99th: inside (8, 16] ms.
	if l.P99ms <= 8 || l.P99ms > 16 {
		t.Errorf("p99 = %v ms, want within the (8, 16] ms bucket", l.P99ms)
	}
	if got := formatStages(st, func(l StageLatency) float64 { return l.MeanMs }); got != "- / - / 11 / -" {
		t.Errorf("formatStages = %q", got)
	}
	if got := formatStages(nil, nil); got != "-" {
		t.Errorf("formatStages of nothing = %q", got)
	}
	if _, err := scrape(context.Background(), "127.0.0.1:1"); err == nil {
		t.Error("scraping a closed port succeeded")
	}
}

func TestLastFlag(t *testing.T) {
	args := []string{"router", "--metrics-addr", "", "--x", "1", "--metrics-addr", "127.0.0.1:9"}
	if got := lastFlag(args, "--metrics-addr", "def"); got != "127.0.0.1:9" {
		t.Errorf("lastFlag = %q", got)
	}
	if got := lastFlag(args[:1], "--metrics-addr", "def"); got != "def" {
		t.Errorf("lastFlag without the flag = %q", got)
	}
}

// Metrics ports come from below the ephemeral range, where outgoing
// connections cannot take them before the child listens.
func TestFreeAddrBelowEphemeralRange(t *testing.T) {
	hi := 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if eph, err := strconv.Atoi(strings.Fields(string(b))[0]); err == nil {
			hi = min(hi, eph-1)
		}
	}
	for range 20 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		if hi-20000 >= 100 && (n < 20000 || n > hi) {
			t.Errorf("freeAddr = %s, want a port in [20000, %d]", addr, hi)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("freeAddr gave %s, which does not bind: %v", addr, err)
		}
		ln.Close()
	}
}
