package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxEventBytes is the largest event record Hookstream carries, counted as
// RecordBytes counts it. The producer refuses a larger event and the router
// quarantines one that another publisher wrote, without its value: every
// copy of it (endpoint topic, retry tier, dead letter) would fail to write
// for good, and a write that keeps failing holds back the other events of
// its batch.
//
// The limit sits below franz-go's default batch limit (1,000,012 bytes)
// and Kafka's default message.max.bytes (1,048,588), leaving room for what
// the deliverer adds to a retry-tier record or a dead letter (headers, the
// last error, up to 1 KiB of the endpoint's response).
const MaxEventBytes = 900_000

// RecordBytes is r's size as franz-go counts it against a batch's limit:
// the key, the value and every header's key and value, uncompressed.
func RecordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// DefaultMaxBatchBytes is franz-go's default limit on the record batches it
// writes.
const DefaultMaxBatchBytes = 1_000_012

// FitBatchesToBrokers returns c with MaxBatchBytes lowered to the smallest
// message.max.bytes of the cluster's brokers, when that is below
// DefaultMaxBatchBytes (or below MaxBatchBytes, when set). A broker refuses
// a larger batch outright (MESSAGE_TOO_LARGE), however small its records:
// under load a client would fill batches past the limit and have them
// refused for good. Topics created with their own max.message.bytes are
// not looked at.
func (c Config) FitBatchesToBrokers(ctx context.Context, adm *kadm.Client) (Config, error) {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return c, fmt.Errorf("kafka: listing brokers: %w", err)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, brokers.NodeIDs()...)
	if err != nil {
		return c, fmt.Errorf("kafka: describing broker configs: %w", err)
	}
	limit := c.MaxBatchBytes
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return c, fmt.Errorf("kafka: describing broker %s's configs: %w", rc.Name, rc.Err)
		}
		for _, cfg := range rc.Configs {
			if cfg.Key != "message.max.bytes" || cfg.Value == nil {
				continue
			}
			v, err := strconv.ParseInt(*cfg.Value, 10, 32)
			if err != nil {
				return c, fmt.Errorf("kafka: broker %s: message.max.bytes %q: %w", rc.Name, *cfg.Value, err)
			}
			if int32(v) < limit {
				limit = int32(v)
			}
		}
	}
	if limit < DefaultMaxBatchBytes || c.MaxBatchBytes > 0 {
		c.MaxBatchBytes = limit
	}
	return c, nil
}

// WithBrokerBatchLimit is FitBatchesToBrokers on a client of its own, for
// a service that is starting. On an error (no permission to describe the
// brokers' configs, say) it logs a warning and returns c unchanged.
func (c Config) WithBrokerBatchLimit(ctx context.Context, log *slog.Logger, role string) Config {
	cl, err := kgo.NewClient(c.ClientOpts(role + "-admin")...)
	if err == nil {
		var fitted Config
		fitted, err = c.FitBatchesToBrokers(ctx, kadm.NewClient(cl))
		cl.Close()
		if err == nil {
			if fitted.MaxBatchBytes != c.MaxBatchBytes {
				log.Info(role+": record batches capped at the brokers' message.max.bytes", "bytes", fitted.MaxBatchBytes)
			}
			return fitted
		}
	}
	log.Warn(role+": could not read the brokers' message.max.bytes; batches may be as large as franz-go's default", "bytes", DefaultMaxBatchBytes, "err", err)
	return c
}
