package deliverer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/pkg/metrics"
)

type delivererMetrics struct {
	deliveries         *prometheus.CounterVec
	attempts           *prometheus.CounterVec
	attemptSeconds     prometheus.Histogram
	endToEnd           prometheus.Histogram
	fetchDelay         prometheus.Histogram
	inflight           prometheus.Gauge
	queued             prometheus.Gauge
	partitions         prometheus.Gauge
	commits            *prometheus.CounterVec
	deadLetters        *prometheus.CounterVec
	disabled           prometheus.Counter
	breakersOpen       prometheus.Gauge
	breakerTransitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *delivererMetrics {
	m := &delivererMetrics{
		deliveries: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_deliverer_deliveries_total",
			Help: "Settled jobs by outcome: delivered, retry (to a retry tier), reparked (retry of a paused endpoint written back), dead_lettered, dropped (endpoint deleted), interrupted (shutdown; delivered again after restart).",
		}, []string{"outcome"})),
		attempts: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_deliverer_attempts_total",
			Help: "HTTP delivery attempts by result: 2xx, 3xx, 4xx, 5xx, timeout, error.",
		}, []string{"result"})),
		attemptSeconds: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_deliverer_attempt_duration_seconds",
			Help:    "Duration of one HTTP delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		})),
		endToEnd: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_deliverer_end_to_end_seconds",
			Help:    "From the event's occurred_at to its successful delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		})),
		fetchDelay: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_deliverer_fetch_delay_seconds",
			Help:    "From an endpoint-topic record's timestamp (the router wrote it) to the deliverer fetching it: the wait for the router's transaction to commit and for the fetch, plus the age of any backlog (a replay, a paused or lagging endpoint).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		})),
		inflight: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookstream_deliverer_inflight_requests",
			Help: "Delivery attempts in progress (including retry waits).",
		})),
		queued: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookstream_deliverer_queued_records",
			Help: "Fetched records waiting for a delivery slot.",
		})),
		partitions: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookstream_deliverer_assigned_partitions",
			Help: "Partitions (endpoint topics and retry tiers) assigned to this deliverer.",
		})),
		commits: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_deliverer_commits_total",
			Help: "Offset commits by result (ok, error).",
		}, []string{"result"})),
	}
	m.deadLetters = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookstream_deliverer_dead_letters_total",
		Help: "Records written to the dead-letter topic, by reason: rejected, exhausted, undeliverable.",
	}, []string{"reason"}))
	m.disabled = metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookstream_deliverer_endpoints_disabled_total",
		Help: "Endpoints this deliverer disabled (410 Gone, or failing longer than the auto-disable period).",
	}))
	m.breakersOpen = metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hookstream_deliverer_breakers_open",
		Help: "Endpoints whose circuit breaker is open in this deliverer.",
	}))
	m.breakerTransitions = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookstream_deliverer_breaker_transitions_total",
		Help: "Circuit breaker state changes, by the state entered: open, half-open, closed.",
	}, []string{"state"}))
	for _, o := range []string{OutcomeDelivered, OutcomeRetry, OutcomeReparked, OutcomeDeadLetter, OutcomeDropped, OutcomeInterrupted} {
		m.deliveries.WithLabelValues(o)
	}
	for _, r := range []string{ReasonRejected, ReasonExhausted, ReasonUndeliverable} {
		m.deadLetters.WithLabelValues(r)
	}
	return m
}
