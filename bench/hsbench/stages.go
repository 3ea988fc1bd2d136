package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The services' latency histograms that split a delivery's time by stage,
// in pipeline order. The router's batch duration is per transaction; the
// others are per record.
var stageMetrics = []struct{ key, metric string }{
	{"to_router", "hookstream_router_fetch_delay_seconds"},
	{"router_txn", "hookstream_router_batch_duration_seconds"},
	{"to_deliverer", "hookstream_deliverer_fetch_delay_seconds"},
	{"http", "hookstream_deliverer_attempt_duration_seconds"},
}

// StageLatency is one stage's share of the half-rate run, from the
// difference of two scrapes of the services' /metrics.
type StageLatency struct {
	Count  float64 `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	// P99ms interpolates linearly inside the histogram bucket holding the
	// 99th percentile, so it is as coarse as the buckets (powers of two).
	P99ms float64 `json:"p99_ms"`
}

// histograms is a scrape: cumulative bucket counts by metric name.
type histograms map[string]*dto.Histogram

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a child's --metrics-addr. The port is drawn below the kernel's
// ephemeral range (as scripts/kafka.sh does for the brokers), so the
// outgoing connections of the services and the broker cannot take it
// between this check and the child's listen.
func freeAddr() (string, error) {
	lo, hi := 20000, 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph-1 < hi {
				hi = eph - 1
			}
		}
	}
	for range 200 {
		if hi-lo < 100 {
			break
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the kernel's choice, racy but free now
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape reads the histograms of the services serving /metrics at addrs.
func scrape(ctx context.Context, addrs ...string) (histograms, error) {
	hs := histograms{}
	for _, addr := range addrs {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("scraping %s: %w", addr, err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("scraping %s: %w", addr, err)
		}
		for name, mf := range mfs {
			if mf.GetType() == dto.MetricType_HISTOGRAM && len(mf.GetMetric()) == 1 {
				hs[name] = mf.GetMetric()[0].GetHistogram()
			}
		}
	}
	return hs, nil
}

// stageLatencies is what happened between scrapes a and b, by stage key;
// stages without samples are left out.
func stageLatencies(a, b histograms) map[string]StageLatency {
	out := map[string]StageLatency{}
	for _, s := range stageMetrics {
		if l, ok := histogramDelta(a[s.metric], b[s.metric]); ok {
			out[s.key] = l
		}
	}
	return out
}

// histogramDelta is the mean and 99th percentile of the samples b has that
// a has not (a may be nil: everything in b).
func histogramDelta(a, b *dto.Histogram) (StageLatency, bool) {
	if b == nil {
		return StageLatency{}, false
	}
	before := map[float64]uint64{}
	var count0 uint64
	var sum0 float64
	if a != nil {
		for _, bk := range a.GetBucket() {
			before[bk.GetUpperBound()] = bk.GetCumulativeCount()
		}
		count0, sum0 = a.GetSampleCount(), a.GetSampleSum()
	}
	n := float64(b.GetSampleCount() - count0)
	if n <= 0 {
		return StageLatency{}, false
	}
	type bucket struct{ le, cum float64 }
	var bs []bucket
	for _, bk := range b.GetBucket() {
		bs = append(bs, bucket{bk.GetUpperBound(), float64(bk.GetCumulativeCount() - before[bk.GetUpperBound()])})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	l := StageLatency{Count: n, MeanMs: 1000 * (b.GetSampleSum() - sum0) / n, P99ms: math.Inf(1)}
	want, lo, below := 0.99*n, 0.0, 0.0
	for _, bk := range bs {
		if bk.cum >= want {
			frac := 1.0
			if bk.cum > below {
				frac = (want - below) / (bk.cum - below)
			}
			l.P99ms = 1000 * (lo + frac*(bk.le-lo))
			break
		}
		lo, below = bk.le, bk.cum
	}
	return l, true
}

// formatStages prints the stages' field f in pipeline order, "-" where a
// stage has no samples.
func formatStages(st map[string]StageLatency, f func(StageLatency) float64) string {
	if len(st) == 0 {
		return "-"
	}
	s := ""
	for i, m := range stageMetrics {
		if i > 0 {
			s += " / "
		}
		if l, ok := st[m.key]; ok && !math.IsInf(f(l), 0) {
			s += fmt.Sprintf("%.0f", f(l))
		} else {
			s += "-"
		}
	}
	return s
}

// scrapeStages scrapes the stage's router and deliverer, or says on
// stderr why it could not (the latency split is then left out).
func (s *stage) scrapeStages(ctx context.Context) histograms {
	var addrs []string
	for _, role := range []string{"router", "deliverer"} {
		if s.metrics[role] == "" {
			return nil
		}
		addrs = append(addrs, s.metrics[role])
	}
	h, err := scrape(ctx, addrs...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hsbench: %s: no latency split: %v\n", s.br.kind, err)
		return nil
	}
	return h
}
