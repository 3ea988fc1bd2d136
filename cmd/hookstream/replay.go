package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/ops"
)

const replaySynopsis = `Deliver an endpoint's events again, from the first record of its topic at or
after --from: an RFC 3339 time (2026-11-23T18:00:00Z), a negative duration
(-2h = two hours ago) or earliest.

Without --copy, replay rewinds the deliverers' consumer group (--group) on every
partition of <prefix>.endpoint.<ID> to that record. Kafka refuses offset commits
from outside a group with live members, so replay checks the group first and
refuses unless every deliverer of it is stopped; start them again afterwards and
they deliver from there. Offsets only move back: a partition the group has not
got past the start on, or has never committed, is left alone.

With --copy, replay re-produces the records from there up to the topic's current
end onto the same topic and partitions while the deliverers keep running; they
deliver them again with the same webhook-id, so receivers can de-duplicate. Each
copy carries hookstream-replayed-from: <partition>/<offset>; copies of records
that are themselves in the range are not copied again. An interrupted --copy is
not resumable: running it again copies the whole range again.

--dry-run prints the plan (partitions, offsets, record counts) and changes nothing.`

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("replay", "hookstream replay --endpoint ID --from <RFC 3339 time | -duration | earliest> [--copy] [--group G] [--dry-run]\n\n"+replaySynopsis, stderr)
	var kf kafkaFlags
	var lf logFlags
	var id, fromArg, group string
	var copyMode, dry bool
	var timeout time.Duration
	kf.register(f)
	lf.register(f)
	f.perCall = true
	f.str(&id, "endpoint", "", "endpoint id (required)")
	f.str(&fromArg, "from", "", "where to start: RFC 3339 time, negative duration (-2h) or earliest (required)")
	f.str(&group, "group", deliverer.DefaultGroup, "the deliverers' consumer group (rewinding only)")
	f.boolean(&copyMode, "copy", false, "re-produce the records instead of rewinding the group; works while deliverers run")
	f.boolean(&dry, "dry-run", false, "print the plan; change nothing")
	f.duration(&timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	switch {
	case id == "":
		return usageError(stderr, "replay", "--endpoint is required")
	case fromArg == "":
		return usageError(stderr, "replay", "--from is required (RFC 3339 time, negative duration like -2h, or earliest)")
	case group == "" && !copyMode:
		return usageError(stderr, "replay", "--group must not be empty")
	case timeout <= 0:
		return usageError(stderr, "replay", "--timeout must be positive")
	}
	from, err := ops.ParseFrom(fromArg, time.Now())
	if err != nil {
		return usageError(stderr, "replay", "--from %v", err)
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := openStack(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := ops.New(kcfg, st.cat, st.reg).Replay(ctx, ops.ReplayOptions{EndpointID: id, From: from, Group: group, Copy: copyMode, DryRun: dry})
	if rep != nil && (err == nil || dry) { // a failed replay changed nothing: only the error is news
		printReplay(stdout, rep, from)
	}
	return err
}

func printReplay(w io.Writer, r *ops.ReplayReport, from ops.From) {
	prefix := ""
	if r.DryRun {
		prefix = "dry run: "
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.Copy {
		fmt.Fprintf(w, "%scopying %s from %s\n", prefix, r.Topic, from)
		fmt.Fprintln(tw, "PARTITION\tFROM\tEND\tRECORDS")
		for _, p := range r.Partitions {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", p.Partition, p.From, p.End, p.Records)
		}
		_ = tw.Flush()
		verb := "copied"
		if r.DryRun {
			verb = "would copy"
		}
		fmt.Fprintf(w, "%s%s %d record(s)", prefix, verb, r.Records)
		if r.SkippedCopies > 0 {
			fmt.Fprintf(w, "; %d copies of records in the range left out", r.SkippedCopies)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "%srewinding group %s on %s to %s\n", prefix, r.Group, r.Topic, from)
		fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tNEW\tEND\tOFFSETS\tNOTE")
		for _, p := range r.Partitions {
			committed, target := "-", "-"
			if p.Committed >= 0 {
				committed = fmt.Sprint(p.Committed)
			}
			if p.Target >= 0 {
				target = fmt.Sprint(p.Target)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\n", p.Partition, committed, target, p.End, p.Records, p.Note)
		}
		_ = tw.Flush()
		verb := "rewound"
		if r.DryRun {
			verb = "would rewind"
		}
		if r.Records == 0 {
			fmt.Fprintf(w, "%snothing to rewind\n", prefix)
		} else {
			fmt.Fprintf(w, "%s%s %d offset(s) (records plus transaction markers); the deliverers deliver them again when they start\n", prefix, verb, r.Records)
		}
	}
	if r.Disabled {
		fmt.Fprintln(w, "note: the endpoint is disabled: nothing is delivered until it is enabled")
	}
}
