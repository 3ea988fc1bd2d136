package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sum gathers g and returns the sum of the series of the metric family name
// whose labels include every name=value pair of labels (a trailing odd name
// is ignored): counter and gauge values, and histogram and summary sample
// counts. It is 0 when no series matches. Tests and benchmarks read the
// services' metrics with it.
func Sum(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += value(m)
			}
		}
	}
	return sum, nil
}

// Dump writes every non-zero series of g with logf, one per call, as
// "metric name[label=value …] = value": the first thing to read when a test
// of a running pipeline fails.
func Dump(g prometheus.Gatherer, logf func(format string, args ...any)) {
	mfs, err := g.Gather()
	if err != nil {
		logf("metrics: %v", err)
		return
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := value(m)
			if v == 0 {
				continue
			}
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			logf("metric %s[%s] = %v", mf.GetName(), strings.Join(labels, " "), v)
		}
	}
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetSummary() != nil:
		return float64(m.GetSummary().GetSampleCount())
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
