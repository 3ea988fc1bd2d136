package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// LagCollector exports a consumer group's lag (records between the
// committed offset and the end of each partition), computed with
// kadm.Client.Lag when scraped and cached for at most maxAge so frequent
// scrapes do not load the brokers:
//
//	hookstream_consumer_lag_records{group}       total records not yet committed
//	hookstream_consumer_lag_max_records{group}   the largest single-partition lag
//	hookstream_consumer_lag_partitions{group}    partitions with lag > 0
//
// Per-partition series are left out on purpose: a deliverer reads one topic
// per endpoint, thousands of them. A partition written in transactions (the
// router writes endpoint topics so) ends with a transaction marker that no
// consumer commits past until the next record arrives, so a caught-up
// deliverer shows a lag of about one per partition written to.
type LagCollector struct {
	adm    *kadm.Client
	group  string
	maxAge time.Duration

	mu     sync.Mutex
	at     time.Time
	total  float64
	max    float64
	behind float64

	descTotal, descMax, descBehind *prometheus.Desc
}

// NewLagCollector returns a collector of group's lag.
func NewLagCollector(adm *kadm.Client, group string, maxAge time.Duration) *LagCollector {
	labels := prometheus.Labels{"group": group}
	return &LagCollector{
		adm: adm, group: group, maxAge: maxAge,
		descTotal:  prometheus.NewDesc("hookstream_consumer_lag_records", "Records of the group's partitions not yet committed (end offset minus committed offset).", nil, labels),
		descMax:    prometheus.NewDesc("hookstream_consumer_lag_max_records", "The largest lag of a single partition of the group.", nil, labels),
		descBehind: prometheus.NewDesc("hookstream_consumer_lag_partitions", "Partitions of the group with a lag above zero.", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.descTotal
	ch <- c.descMax
	ch <- c.descBehind
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lags, err := c.adm.Lag(ctx, c.group)
		cancel()
		if err == nil {
			c.total, c.max, c.behind = 0, 0, 0
			lags.Each(func(l kadm.DescribedGroupLag) {
				for _, ps := range l.Lag {
					for _, p := range ps {
						if p.Lag <= 0 {
							continue
						}
						c.total += float64(p.Lag)
						c.max = max(c.max, float64(p.Lag))
						c.behind++
					}
				}
			})
			c.at = time.Now()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.descTotal, prometheus.GaugeValue, c.total)
	ch <- prometheus.MustNewConstMetric(c.descMax, prometheus.GaugeValue, c.max)
	ch <- prometheus.MustNewConstMetric(c.descBehind, prometheus.GaugeValue, c.behind)
}
