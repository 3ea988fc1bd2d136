package ops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/registry"
)

// HeaderReplayedFrom is set on each record a copying replay re-produces:
// <partition>/<offset> of the original record in the same topic.
const HeaderReplayedFrom = "hookstream-replayed-from"

// From is where a replay starts.
type From struct {
	Earliest bool      // the start of the topic
	Time     time.Time // the first record stamped at or after Time
}

func (f From) String() string {
	if f.Earliest {
		return "earliest"
	}
	return f.Time.UTC().Format(time.RFC3339Nano)
}

// ParseFrom reads a replay start: "earliest", an RFC 3339 time
// ("2026-11-23T18:00:00Z"), or a negative duration meaning that long before
// now ("-2h", "-90m").
func ParseFrom(s string, now time.Time) (From, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return From{}, errors.New("empty: want an RFC 3339 time, a negative duration like -2h, or earliest")
	case strings.EqualFold(s, "earliest"):
		return From{Earliest: true}, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return From{}, fmt.Errorf("%q: %w", s, err)
		}
		return From{Time: now.Add(d)}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if _, derr := time.ParseDuration(s); derr == nil {
			return From{}, fmt.Errorf("%q: a duration means that long ago and must be negative, e.g. -%s", s, s)
		}
		return From{}, fmt.Errorf("%q: want an RFC 3339 time (2006-01-02T15:04:05Z), a negative duration like -2h, or earliest", s)
	}
	if t.After(now) {
		return From{}, fmt.Errorf("%q is in the future", s)
	}
	return From{Time: t}, nil
}

// ReplayOptions configure Replay.
type ReplayOptions struct {
	EndpointID string
	From       From
	// Group is the deliverers' consumer group (default
	// deliverer.DefaultGroup); not used by a copying replay.
	Group string
	// Copy re-produces the records instead of rewinding the group.
	Copy bool
	// DryRun reads and reports, and writes nothing.
	DryRun bool
}

// ReplayPartition is the plan and outcome of one partition.
type ReplayPartition struct {
	Partition int32
	From      int64 // first offset at or after the start
	End       int64 // last stable offset when the replay began
	// Committed is the group's committed offset before the replay (-1 =
	// none; rewinding replays only).
	Committed int64
	// Target is the offset committed (-1 = partition left alone; rewinding
	// replays only).
	Target int64
	// Records is how many records the partition replays: offsets rewound
	// (Committed - Target, transaction markers included) when rewinding,
	// records re-produced when copying.
	Records int64
	Note    string
}

// ReplayReport says what a replay did (or, dry, would do).
type ReplayReport struct {
	Topic      string
	Group      string // rewinding replays
	Copy       bool
	DryRun     bool
	Disabled   bool // the endpoint is disabled: nothing is delivered until it is enabled
	Partitions []ReplayPartition
	// Records is the total of Partitions' Records.
	Records int64
	// SkippedCopies counts records of earlier copying replays whose
	// original is itself in the replayed range: copying them again would
	// deliver the event twice more.
	SkippedCopies int64
}

// GroupActiveError is returned by a rewinding Replay when the consumer
// group has live members: Kafka refuses offset commits from outside such a
// group, and the members would overwrite them anyway.
type GroupActiveError struct {
	Group   string
	State   string
	Members int
}

func (e *GroupActiveError) Error() string {
	return fmt.Sprintf("consumer group %s has %d live member(s) (state %s): Kafka refuses offset commits from outside a group with live members. "+
		"Stop every deliverer of the group and replay again, or replay by copying (--copy) while they run", e.Group, e.Members, e.State)
}

// Replay delivers an endpoint's records again from opts.From, in one of two
// ways.
//
// Rewinding (the default) commits, for the deliverers' group, every
// partition of the endpoint's topic back to the first offset at or after
// From. It refuses, with a *GroupActiveError, while the group has live
// members (checked with DescribeGroups first; a member that joins in
// between makes Kafka refuse the commit, reported the same way), so
// the deliverers must be stopped; they deliver from there once restarted.
// Offsets only move back: a partition the group has not reached From on,
// or has no committed offset for (the deliverer starts it at its
// beginning), is left alone.
//
// Copying re-produces the records from From up to the end offsets taken at
// the start onto the same topic and partition, with key, value and headers
// unchanged plus HeaderReplayedFrom, while the deliverers run; they deliver
// them again with the same webhook-id, so receivers can tell. Records that
// are themselves copies of an original in the range are not copied again.
// An interrupted copy is not resumable: running it again copies from the
// start of the range again (at-least-once).
func (o *Ops) Replay(ctx context.Context, opts ReplayOptions) (*ReplayReport, error) {
	if opts.EndpointID == "" {
		return nil, errors.New("ops: replay: no endpoint id")
	}
	ep, ok := o.reg.Get(opts.EndpointID)
	if !ok {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, opts.EndpointID)
	}
	if ep.Status == registry.StatusDeleted {
		return nil, fmt.Errorf("endpoint %s is deleted: nothing would deliver its records", ep.ID)
	}
	if opts.Group == "" {
		opts.Group = deliverer.DefaultGroup
	}
	topic := o.kcfg.Topics().Endpoint(ep.ID)
	cl, adm, err := o.adminClient("ops-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	ends, err := offsetsOf(ctx, adm.ListCommittedOffsets, topic)
	if err != nil {
		return nil, err
	}
	var froms map[int32]int64
	if opts.From.Earliest {
		froms, err = offsetsOf(ctx, adm.ListStartOffsets, topic)
	} else {
		ms := opts.From.Time.UnixMilli()
		froms, err = offsetsOf(ctx, func(ctx context.Context, t ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, ms, t...)
		}, topic)
	}
	if err != nil {
		return nil, err
	}
	rep := &ReplayReport{Topic: topic, Copy: opts.Copy, DryRun: opts.DryRun, Disabled: ep.Status == registry.StatusDisabled}
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		from := min(froms[p], ends[p]) // no record after the time: the (high) end
		rep.Partitions = append(rep.Partitions, ReplayPartition{Partition: p, From: from, End: ends[p], Committed: -1, Target: -1})
	}
	if opts.Copy {
		return rep, o.replayCopy(ctx, rep, opts.DryRun)
	}
	rep.Group = opts.Group
	return rep, o.replayRewind(ctx, adm, rep, opts.DryRun)
}

func (o *Ops) replayRewind(ctx context.Context, adm *kadm.Client, rep *ReplayReport, dry bool) error {
	committed, err := adm.FetchOffsetsForTopics(ctx, rep.Group, rep.Topic)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("fetching the offsets of group %s: %w", rep.Group, err)
	}
	commit := kadm.Offsets{}
	for i := range rep.Partitions {
		p := &rep.Partitions[i]
		if c, ok := committed.Lookup(rep.Topic, p.Partition); ok {
			p.Committed = c.At
		}
		switch {
		case p.Committed < 0:
			p.Note = "no committed offset: the group starts this partition at its beginning anyway"
		case p.Committed <= p.From:
			p.Note = "the group has not got past the start yet"
		default:
			p.Target = p.From
			p.Records = p.Committed - p.From
			rep.Records += p.Records
			commit.Add(kadm.Offset{Topic: rep.Topic, Partition: p.Partition, At: p.Target, LeaderEpoch: -1})
		}
	}
	if err := groupInactive(ctx, adm, rep.Group); err != nil || dry || len(commit) == 0 {
		return err
	}
	resp, err := adm.CommitOffsets(ctx, rep.Group, commit)
	if err == nil {
		err = resp.Error()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration),
		errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.StaleMemberEpoch),
		errors.Is(err, kerr.FencedMemberEpoch):
		return &GroupActiveError{Group: rep.Group, State: "changed while committing: " + err.Error(), Members: 1}
	default:
		return fmt.Errorf("committing offsets for group %s: %w", rep.Group, err)
	}
}

// groupInactive returns a *GroupActiveError if group has live members,
// whether it is a classic group or a KIP-848 consumer group.
func groupInactive(ctx context.Context, adm *kadm.Client, group string) error {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describing group %s: %w", group, err)
	}
	g, ok := dg[group]
	if ok && g.Err == nil {
		if len(g.Members) > 0 || g.State != "Empty" && g.State != "Dead" && g.State != "" {
			return &GroupActiveError{Group: group, State: g.State, Members: len(g.Members)}
		}
		return nil
	}
	if ok && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describing group %s: %w", group, g.Err)
	}
	// Not a classic group: a consumer group of the new protocol, or none.
	cg, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		if errors.Is(err, kerr.UnsupportedVersion) || errors.Is(err, kerr.GroupIDNotFound) {
			return nil
		}
		return fmt.Errorf("describing group %s: %w", group, err)
	}
	c, ok := cg[group]
	if !ok || errors.Is(c.Err, kerr.GroupIDNotFound) {
		return nil
	}
	if c.Err != nil {
		return fmt.Errorf("describing group %s: %w", group, c.Err)
	}
	if len(c.Members) > 0 || c.State != "Empty" && c.State != "Dead" {
		return &GroupActiveError{Group: group, State: c.State, Members: len(c.Members)}
	}
	return nil
}

func (o *Ops) replayCopy(ctx context.Context, rep *ReplayReport, dry bool) error {
	spans := map[int32]span{}
	idx := map[int32]int{}
	for i, p := range rep.Partitions {
		spans[p.Partition] = span{from: p.From, to: p.End}
		idx[p.Partition] = i
	}
	var prod *kgo.Client
	var (
		mu      sync.Mutex
		prodErr error
	)
	if !dry {
		var err error
		prod, err = kgo.NewClient(o.kcfg.ClientOpts("replay",
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
		)...)
		if err != nil {
			return err
		}
		defer prod.Close()
	}
	err := o.scan(ctx, rep.Topic, spans, func(r *kgo.Record) error {
		root := letterRef(r.Partition, r.Offset)
		headers := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
		for _, h := range r.Headers {
			if h.Key != HeaderReplayedFrom {
				headers = append(headers, h)
				continue
			}
			p, off, ok := parseRef(string(h.Value))
			if ok && p == r.Partition && off >= spans[p].from {
				rep.SkippedCopies++
				return nil
			}
			root = string(h.Value)
		}
		headers = append(headers, kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(root)})
		rep.Partitions[idx[r.Partition]].Records++
		rep.Records++
		if dry {
			return nil
		}
		mu.Lock()
		err := prodErr
		mu.Unlock()
		if err != nil {
			return err
		}
		prod.Produce(ctx, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: headers},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if prodErr == nil {
						prodErr = err
					}
					mu.Unlock()
				}
			})
		return nil
	})
	if prod != nil {
		if ferr := prod.Flush(ctx); err == nil {
			err = ferr
		}
		mu.Lock()
		if err == nil && prodErr != nil {
			err = prodErr
		}
		mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w (records copied before the failure stay; running the replay again copies the whole range again)", rep.Topic, err)
	}
	return nil
}

// parseRef reads <partition>/<offset>.
func parseRef(s string) (int32, int64, bool) {
	ps, os, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, false
	}
	p, err1 := strconv.ParseInt(ps, 10, 32)
	o, err2 := strconv.ParseInt(os, 10, 64)
	return int32(p), o, err1 == nil && err2 == nil
}
