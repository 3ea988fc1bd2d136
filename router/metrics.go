package router

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/pkg/metrics"
)

type routerMetrics struct {
	events       *prometheus.CounterVec
	fanout       prometheus.Counter
	transactions *prometheus.CounterVec
	writeRetries prometheus.Counter
	recreated    prometheus.Counter
	unwritable   *prometheus.CounterVec
	batchSeconds prometheus.Histogram
	fetchDelay   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *routerMetrics {
	m := &routerMetrics{
		events: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_router_events_total",
			Help: "Events consumed from the events topic, by result: routed (to at least one endpoint), unrouted (no subscribed endpoint), quarantined (moved to the invalid topic).",
		}, []string{"result"})),
		fanout: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookstream_router_fanout_records_total",
			Help: "Records written to endpoint topics.",
		})),
		transactions: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_router_transactions_total",
			Help: "Router transactions by result (committed, aborted).",
		}, []string{"result"})),
		writeRetries: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookstream_router_write_retries_total",
			Help: "At-least-once routers only: batches written again after a failed write (each retry rewrites the whole batch).",
		})),
		recreated: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookstream_router_topics_recreated_total",
			Help: "Endpoint topics the router found missing (a write failed with UNKNOWN_TOPIC_OR_PARTITION) and created again, for endpoints still in the registry.",
		})),
		unwritable: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_router_unwritable_copies_total",
			Help: "Event copies Kafka refused for good on their endpoint topic (too large for its max.message.bytes, not authorized, a policy), written instead to: dlq (a dead letter, reason unwritable) or invalid (a quarantine record without the value, when the dead letter was refused too).",
		}, []string{"written_to"})),
		batchSeconds: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_router_batch_duration_seconds",
			Help:    "Time to route one polled batch: from transaction begin to commit (exactly-once), or until every write is acknowledged (at-least-once).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		})),
		fetchDelay: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_router_fetch_delay_seconds",
			Help:    "From an event record's timestamp (its producer's) to the router polling it, plus the age of any backlog (a replay, a lagging router).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		})),
	}
	for _, r := range []string{"routed", "unrouted", "quarantined"} {
		m.events.WithLabelValues(r)
	}
	for _, r := range []string{"committed", "aborted"} {
		m.transactions.WithLabelValues(r)
	}
	for _, w := range []string{"dlq", "invalid"} {
		m.unwritable.WithLabelValues(w)
	}
	return m
}
