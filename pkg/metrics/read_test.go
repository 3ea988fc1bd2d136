package metrics_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/pkg/metrics"
)

func TestSumAndDump(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total"}, []string{"a", "b"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_gauge"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t_seconds"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("x", "1").Add(2)
	c.WithLabelValues("x", "2").Add(3)
	c.WithLabelValues("y", "1").Add(5)
	g.Set(7)
	h.Observe(0.1)
	h.Observe(0.2)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"t_total", nil, 10},
		{"t_total", []string{"a", "x"}, 5},
		{"t_total", []string{"a", "x", "b", "2"}, 3},
		{"t_total", []string{"a", "z"}, 0},
		{"t_gauge", nil, 7},
		{"t_seconds", nil, 2},
		{"t_missing", nil, 0},
	} {
		got, err := metrics.Sum(reg, tc.name, tc.labels...)
		if err != nil || got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, %v; want %v", tc.name, tc.labels, got, err, tc.want)
		}
	}
	var lines []string
	metrics.Dump(reg, func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) })
	out := strings.Join(lines, "\n")
	for _, want := range []string{"metric t_total[a=x b=1] = 2", "metric t_total[a=y b=1] = 5", "metric t_gauge[] = 7", "metric t_seconds[] = 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("Dump output lacks %q:\n%s", want, out)
		}
	}
	if len(lines) != 5 {
		t.Errorf("Dump wrote %d lines, want 5 (zero series left out):\n%s", len(lines), out)
	}
}
