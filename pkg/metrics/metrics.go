// Package metrics holds the Prometheus plumbing every Hookstream service
// shares: registering collectors idempotently and serving /metrics.
//
// Metric names follow the Prometheus conventions: hookstream_<stage>_…_total
// for counters, _seconds for durations.
package metrics

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Register registers c with reg and returns the collector to use: c itself,
// or the equal collector already registered (so two instances of a stage in
// one process share their series). A nil reg registers nothing. Any other
// registration error panics, as it is a programming error (a name reused
// with other labels).
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Handler serves the metrics of g in the Prometheus text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
