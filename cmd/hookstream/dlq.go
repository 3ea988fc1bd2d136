package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/ops"
)

const dlqSynopsis = `dlq <subcommand> [flags]

Read and redrive the dead-letter topic (<prefix>.dlq). Both subcommands read it
from its start up to the end it has when they begin, without a consumer group.

  dlq list [--endpoint ID] [--reason R] [--event-id ID] [--limit N] [--json]
        the newest N matching dead letters (default 100, 0 = all), oldest first,
        each marked with whether a redrive has already re-produced it
  dlq redrive [--endpoint ID] [--reason R] [--event-id ID] [--dry-run]
        re-produce each matching dead letter's original envelope to its
        endpoint's topic: the deliverer attempts it afresh, with a full retry
        schedule and the same webhook-id

Reasons: rejected (a non-retryable answer), exhausted (retry schedule spent),
undeliverable (the record could not be rendered), unwritable (written by the
router: Kafka refused the copy on the endpoint's topic; fix the topic, then
redrive).

Redrive sends each dead letter once: it records every letter it redrives in the
compacted topic <prefix>.dlq.redriven, in the same Kafka transaction as the
re-produced envelope, so running it again, with any filters, sends only letters
not redriven yet (an interrupted run loses nothing and repeats nothing). Letters
of unknown or deleted endpoints are skipped and reported, and stay eligible;
letters of a disabled endpoint are redriven and wait until it is enabled. The
re-produced record is keyed by the event's tenant id (a dead letter does not keep
the original key) and carries hookstream-redriven-from: <dlq>/<partition>/<offset>.
Run one redrive at a time: a second one takes over and the first fails.`

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "Usage: hookstream "+dlqSynopsis)
			return nil
		}
		fmt.Fprintln(stderr, "Usage: hookstream "+dlqSynopsis)
		return errUsage
	}
	sub := args[0]
	cmd := "dlq " + sub
	f := newFlags(cmd, dlqSynopsis, stderr)
	var kf kafkaFlags
	var lf logFlags
	var filter ops.DeadLetterFilter
	var limit int
	var asJSON, dry bool
	var timeout time.Duration
	kf.register(f)
	lf.register(f)
	f.perCall = true
	f.str(&filter.EndpointID, "endpoint", "", "only dead letters of this endpoint id")
	f.str(&filter.Reason, "reason", "", "only dead letters with this reason: rejected, exhausted, undeliverable or unwritable")
	f.str(&filter.EventID, "event-id", "", "only dead letters of this event id")
	f.duration(&timeout, "timeout", 10*time.Minute, "give up after this long")
	switch sub {
	case "list":
		f.integer(&limit, "limit", 100, "show the newest N matching dead letters (0 = all)")
		f.boolean(&asJSON, "json", false, "print JSON")
	case "redrive":
		f.boolean(&dry, "dry-run", false, "report what would be redriven; write nothing")
	default:
		fmt.Fprintf(stderr, "hookstream dlq: unknown subcommand %q\n\nUsage: hookstream %s\n", sub, dlqSynopsis)
		return errUsage
	}
	if err := parseFlags(f, args[1:]); err != nil {
		return err
	}
	switch filter.Reason {
	case "", deliverer.ReasonRejected, deliverer.ReasonExhausted, deliverer.ReasonUndeliverable, deliverer.ReasonUnwritable:
	default:
		return usageError(stderr, cmd, "--reason %q: want %s, %s, %s or %s", filter.Reason, deliverer.ReasonRejected, deliverer.ReasonExhausted, deliverer.ReasonUndeliverable, deliverer.ReasonUnwritable)
	}
	if limit < 0 {
		return usageError(stderr, cmd, "--limit must be 0 (all) or more, got %d", limit)
	}
	if timeout <= 0 {
		return usageError(stderr, cmd, "--timeout must be positive")
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
	o := ops.New(kcfg, st.cat, st.reg)

	if sub == "list" {
		list, err := o.ListDeadLetters(ctx, filter, limit)
		if err != nil {
			return err
		}
		letters := list.Letters
		if len(letters) < list.Matched {
			fmt.Fprintf(stderr, "showing the newest %d of %d matching dead letters (--limit 0 for all)\n", len(letters), list.Matched)
		}
		if list.Undecodable > 0 {
			fmt.Fprintf(stderr, "%d record(s) of %s are not dead letters Hookstream can decode; left out\n", list.Undecodable, kcfg.Topics().DLQ())
		}
		if asJSON {
			out := make([]deadLetterJSON, len(letters))
			for i := range letters {
				out[i] = toDeadLetterJSON(&letters[i])
			}
			return printJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEAD_AT\tENDPOINT\tEVENT_ID\tTYPE\tATTEMPTS\tLAST_STATUS\tREASON\tREDRIVEN\tLAST_ERROR")
		for _, d := range letters {
			redriven := "no"
			if d.Redriven {
				redriven = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", d.DeadAt.UTC().Format(time.RFC3339), d.EndpointID, d.EventID, d.EventType,
				d.Attempts, d.LastStatus, d.Reason, redriven, oneLine(d.LastError, 80))
		}
		return tw.Flush()
	}

	rep, err := o.Redrive(ctx, ops.RedriveOptions{Filter: filter, DryRun: dry})
	if rep != nil {
		printRedrive(stdout, rep)
	}
	return err
}

func printRedrive(w io.Writer, r *ops.RedriveReport) {
	verb := "redrove"
	if r.DryRun {
		verb = "dry run: would redrive"
	}
	var per []string
	for _, id := range slices.Sorted(maps.Keys(r.ByEndpoint)) {
		per = append(per, fmt.Sprintf("%s %d", id, r.ByEndpoint[id]))
	}
	fmt.Fprintf(w, "%s %d dead letter(s)", verb, r.Redriven)
	if len(per) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(per, ", "))
	}
	fmt.Fprintf(w, "\nalready redriven (not sent again): %d\nnot matching the filters: %d\ndead-letter records read: %d\n", r.AlreadyRedriven, r.NotMatching, r.Scanned)
	fmt.Fprintf(w, "skipped: %d\n", len(r.Skipped))
	for _, s := range r.SkipSummary() {
		fmt.Fprintf(w, "  %s\n", s)
	}
	for _, id := range r.Disabled {
		fmt.Fprintf(w, "note: endpoint %s is disabled: its redriven letters are delivered once it is enabled\n", id)
	}
}

// deadLetterJSON is a dead letter as dlq list --json prints it (without the
// envelope bytes).
type deadLetterJSON struct {
	Partition      int32     `json:"partition"`
	Offset         int64     `json:"offset"`
	DeadAt         time.Time `json:"dead_at"`
	EndpointID     string    `json:"endpoint_id"`
	EndpointURL    string    `json:"endpoint_url"`
	EventID        string    `json:"event_id"`
	EventType      string    `json:"event_type"`
	TenantID       string    `json:"tenant_id"`
	EventKey       string    `json:"event_key,omitempty"`
	Attempts       int32     `json:"attempts"`
	FirstAttemptAt time.Time `json:"first_attempt_at"`
	LastAttemptAt  time.Time `json:"last_attempt_at"`
	LastStatus     int32     `json:"last_status"`
	LastError      string    `json:"last_error"`
	ResponseBody   string    `json:"response_body,omitempty"`
	Reason         string    `json:"reason"`
	Redriven       bool      `json:"redriven"`
}

func toDeadLetterJSON(d *ops.DeadLetter) deadLetterJSON {
	return deadLetterJSON{
		Partition: d.Partition, Offset: d.Offset, DeadAt: d.DeadAt.UTC(), EndpointID: d.EndpointID, EndpointURL: d.EndpointURL,
		EventID: d.EventID, EventType: d.EventType, TenantID: d.TenantID, EventKey: d.EventKey, Attempts: d.Attempts,
		FirstAttemptAt: d.FirstAttemptAt.UTC(), LastAttemptAt: d.LastAttemptAt.UTC(), LastStatus: d.LastStatus,
		LastError: d.LastError, ResponseBody: d.ResponseBody, Reason: d.Reason, Redriven: d.Redriven,
	}
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
