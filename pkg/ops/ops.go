// Package ops holds Hookstream's operator actions — changing and rotating an
// endpoint, listing and redriving dead letters, replaying an endpoint — so
// that the hookstream command is a thin layer over tested code.
//
// Every action that reads a topic reads it from a start offset up to the
// end offsets taken when the action begins (the last stable offsets:
// read-committed, so aborted transactional records are never seen), without
// a consumer group. Records appended while it runs, its own included, are
// left for the next run.
package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// Ops runs operator actions against one deployment (one topic prefix).
// Its methods are safe for concurrent use, though two redrives or two
// replays of one endpoint at once are not useful (see Redrive).
type Ops struct {
	kcfg kafka.Config
	cat  *codec.Catalog
	reg  *registry.Registry

	afterBatch func() // tests: called after each redrive transaction
}

// New returns an Ops for the deployment kcfg describes; reg is a live view
// of its registry (registry.Open), cat its schema catalog.
func New(kcfg kafka.Config, cat *codec.Catalog, reg *registry.Registry) *Ops {
	return &Ops{kcfg: kcfg, cat: cat, reg: reg}
}

// ErrTopicNotFound is returned (wrapped) when a topic an action needs does
// not exist.
var ErrTopicNotFound = errors.New("topic does not exist")

// span is the offsets [from, to) of one partition.
type span struct{ from, to int64 }

// offsetsOf lists one kind of offsets of every partition of topic.
func offsetsOf(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (map[int32]int64, error) {
	lo, err := list(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("%s: %w", topic, ErrTopicNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", topic, ErrTopicNotFound)
	}
	return out, nil
}

// wholeTopic returns, for every partition of topic, the span from its log
// start to its last stable offset now.
func wholeTopic(ctx context.Context, adm *kadm.Client, topic string) (map[int32]span, error) {
	starts, err := offsetsOf(ctx, adm.ListStartOffsets, topic)
	if err != nil {
		return nil, err
	}
	ends, err := offsetsOf(ctx, adm.ListCommittedOffsets, topic)
	if err != nil {
		return nil, err
	}
	spans := map[int32]span{}
	for p, end := range ends {
		spans[p] = span{from: starts[p], to: end}
	}
	return spans, nil
}

// scan reads the spans of topic read-committed and calls fn for every data
// record, in offset order within each partition (partitions interleave). It
// returns when every span is read, fn fails or ctx ends.
//
// A partition is done when a record (data or control) at or past its span's
// last offset arrives. Control records are kept for that reason: a
// transaction's commit marker is often the last offset below the end. Were
// the last offset an aborted record whose abort marker lies above the end,
// scan waits for the next record after it, which the transaction that kept
// the end low is bound to produce or end with.
func (o *Ops) scan(ctx context.Context, topic string, spans map[int32]span, fn func(*kgo.Record) error) error {
	start := map[int32]kgo.Offset{}
	pending := map[int32]int64{}
	for p, s := range spans {
		if s.from < s.to {
			start[p] = kgo.NewOffset().At(s.from)
			pending[p] = s.to
		}
	}
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(o.kcfg.ClientOpts("ops-reader",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("reading %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var cbErr error
		var finished []int32
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				end, ok := pending[r.Partition]
				if !ok || cbErr != nil {
					return
				}
				if r.Offset >= end {
					delete(pending, r.Partition)
					finished = append(finished, r.Partition)
					return
				}
				if !r.Attrs.IsControl() {
					if cbErr = fn(r); cbErr != nil {
						return
					}
				}
				if r.Offset >= end-1 {
					delete(pending, r.Partition)
					finished = append(finished, r.Partition)
				}
			}
		})
		if cbErr != nil {
			return cbErr
		}
		if len(finished) > 0 && len(pending) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{topic: finished})
		}
	}
	return nil
}

// topicExists reports whether topic exists.
func topicExists(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return false, err
	}
	td, ok := md.Topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return false, nil
	}
	return td.Err == nil, td.Err
}

// adminClient returns a client and its kadm view; close the client.
func (o *Ops) adminClient(role string, extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	cl, err := kgo.NewClient(o.kcfg.ClientOpts(role, extra...)...)
	if err != nil {
		return nil, nil, err
	}
	return cl, kadm.NewClient(cl), nil
}
