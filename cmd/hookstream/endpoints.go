package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/ops"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

const endpointsSynopsis = `endpoints <subcommand> [flags]

Manage endpoints in the registry topic.

  endpoints add --tenant T --url U --events 'payment.*,order.created' [--partitions N] [--secret whsec_…]
                [--ordered] [--rate-limit R] [--max-in-flight N] [--retry-schedule 5s,1m,…]
  endpoints update --id ID [--url U] [--events …] [--partitions N] [--rate-limit R] [--max-in-flight N]
                [--ordered=true|false] [--retry-schedule 5s,1m,…|default] [--description D]
                                    change only the fields given
  endpoints rotate --id ID [--secret whsec_…]
                                    add a new signing secret (printed); the old ones keep signing, so
                                    receivers that trust either verify during the rotation
  endpoints rotate --id ID --drop-old
                                    end a rotation: keep only the newest secret
                                    (with --secret: replace every secret with it at once)
  endpoints list [--tenant T] [--json]
  endpoints get --id ID
  endpoints disable --id ID [--reason R]
  endpoints enable --id ID
  endpoints delete --id ID          stop deliveries now; the topic is removed by purge after the grace period
  endpoints purge [--grace 24h]     remove topics and records of endpoints deleted longer ago than the grace`

// limitFlags are the delivery settings of an endpoint, for add and update.
type limitFlags struct {
	rateLimit   float64
	maxInFlight int
	ordered     bool
	schedule    string
}

func (l *limitFlags) register(f *flags) {
	f.float(&l.rateLimit, "rate-limit", 0, "most requests per second to the endpoint (0 = unlimited)")
	f.integer(&l.maxInFlight, "max-in-flight", 0, "most concurrent requests to the endpoint (0 = the deliverer's --max-inflight-per-endpoint)")
	f.boolean(&l.ordered, "ordered", false, "retry in place: records behind a failing one on its partition wait instead of overtaking it (--ordered=false to turn off)")
	f.str(&l.schedule, "retry-schedule", "", "the endpoint's own delays before each retry, e.g. 5s,1m,10m; empty or 'default' = the deliverer's. Delays are served by the deliverer's retry tiers")
}

// retrySchedule parses --retry-schedule: nil for the deliverer's schedule.
func (l *limitFlags) retrySchedule() ([]time.Duration, error) {
	if s := strings.TrimSpace(l.schedule); s == "" || s == "default" {
		return nil, nil
	}
	sched, err := deliverer.ParseSchedule(l.schedule)
	if err != nil {
		return nil, err
	}
	if _, err := ops.RetryScheduleMS(sched); err != nil {
		return nil, err
	}
	return sched, nil
}

func (l *limitFlags) maxInFlight32() (int32, error) {
	if l.maxInFlight < 0 || l.maxInFlight > math.MaxInt32 {
		return 0, fmt.Errorf("--max-in-flight must be 0..%d, got %d", math.MaxInt32, l.maxInFlight)
	}
	return int32(l.maxInFlight), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	out := []string{}
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// usageError prints "hookstream <cmd>: <msg>" and returns errUsage (exit 2).
func usageError(stderr io.Writer, cmd, format string, args ...any) error {
	fmt.Fprintf(stderr, "hookstream %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return errUsage
}

func runEndpoints(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "Usage: hookstream "+endpointsSynopsis)
			return nil
		}
		fmt.Fprintln(stderr, "Usage: hookstream "+endpointsSynopsis)
		return errUsage
	}
	sub := args[0]
	f := newFlags("endpoints "+sub, endpointsSynopsis, stderr)
	var kf kafkaFlags
	var lf logFlags
	var id, tenant, url, events, secret, reason, desc string
	var partitions int
	var asJSON, dropOld bool
	var grace time.Duration
	var lim limitFlags
	kf.register(f)
	lf.register(f)
	f.perCall = true
	switch sub {
	case "add":
		f.str(&tenant, "tenant", "", "tenant id (required)")
		f.str(&url, "url", "", "endpoint URL, http or https (required)")
		f.str(&events, "events", "", "comma-separated subscriptions: exact type, category.* or * (required)")
		f.str(&secret, "secret", "", "signing secret whsec_… (default: a new random one)")
		f.str(&id, "id", "", "endpoint id (default: a new ep_ id)")
		f.str(&desc, "description", "", "free text")
		f.integer(&partitions, "partitions", 1, "partitions of the endpoint's topic (raise for high-volume endpoints)")
		lim.register(f)
		f.boolean(&asJSON, "json", false, "print the endpoint as JSON, secret included")
	case "update":
		f.str(&id, "id", "", "endpoint id (required)")
		f.str(&url, "url", "", "new endpoint URL, http or https")
		f.str(&events, "events", "", "new comma-separated subscriptions, replacing the old ones")
		f.integer(&partitions, "partitions", 0, "grow the endpoint's topic to this many partitions (never shrinks)")
		lim.register(f)
		f.str(&desc, "description", "", "new free text")
		f.boolean(&asJSON, "json", false, "print the endpoint as JSON")
	case "rotate":
		f.str(&id, "id", "", "endpoint id (required)")
		f.str(&secret, "secret", "", "the new signing secret whsec_… (default: a new random one)")
		f.boolean(&dropOld, "drop-old", false, "keep only the newest secret (ends a rotation); with --secret, replace every secret with it at once")
	case "list":
		f.str(&tenant, "tenant", "", "only this tenant's endpoints")
		f.boolean(&asJSON, "json", false, "print JSON")
	case "get", "enable", "delete":
		f.str(&id, "id", "", "endpoint id (required)")
	case "disable":
		f.str(&id, "id", "", "endpoint id (required)")
		f.str(&reason, "reason", "disabled by operator", "why, shown in the registry")
	case "purge":
		f.duration(&grace, "grace", 24*time.Hour, "remove endpoints deleted longer ago than this")
	default:
		fmt.Fprintf(stderr, "hookstream endpoints: unknown subcommand %q\n\nUsage: hookstream %s\n", sub, endpointsSynopsis)
		return errUsage
	}
	if err := parseFlags(f, args[1:]); err != nil {
		return err
	}
	var required []struct{ name, v string }
	switch sub {
	case "add":
		required = []struct{ name, v string }{{"--tenant", tenant}, {"--url", url}, {"--events", events}}
	case "get", "enable", "delete", "disable", "update", "rotate":
		required = []struct{ name, v string }{{"--id", id}}
	}
	for _, r := range required {
		if r.v == "" {
			fmt.Fprintf(stderr, "hookstream endpoints %s: %s is required\n", sub, r.name)
			return errUsage
		}
	}
	cmd := "endpoints " + sub
	var change ops.EndpointChange
	var sched []time.Duration
	var maxIn int32
	switch sub {
	case "add":
		var err error
		if sched, err = lim.retrySchedule(); err != nil {
			return usageError(stderr, cmd, "--retry-schedule: %v", err)
		}
		if maxIn, err = lim.maxInFlight32(); err != nil {
			return usageError(stderr, cmd, "%v", err)
		}
	case "update":
		set := map[string]bool{}
		f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		var err error
		if change, err = updateChange(set, url, events, partitions, desc, &lim); err != nil {
			return usageError(stderr, cmd, "%v", err)
		}
		if change.IsZero() {
			return usageError(stderr, cmd, "nothing to update: give at least one of --url, --events, --partitions, --rate-limit, --max-in-flight, --ordered, --retry-schedule, --description")
		}
	case "rotate":
		if secret != "" {
			if _, err := webhook.ParseSecret(secret); err != nil {
				return usageError(stderr, cmd, "--secret: %v", err)
			}
		}
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := openStack(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	cl, err := kgo.NewClient(kcfg.ClientOpts("endpoints", kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := registry.NewAdmin(kcfg, cl, st.cat, st.reg)

	switch sub {
	case "add":
		if partitions < 1 || partitions > registry.MaxPartitions {
			return fmt.Errorf("--partitions must be 1..%d, got %d", registry.MaxPartitions, partitions)
		}
		spec := registry.Endpoint{ID: id, TenantID: tenant, URL: url, Partitions: int32(partitions), Description: desc,
			EventTypes: splitList(events), Ordered: lim.ordered, RateLimit: lim.rateLimit, MaxInFlight: maxIn}
		if spec.RetryScheduleMS, err = ops.RetryScheduleMS(sched); err != nil {
			return err
		}
		if secret != "" {
			spec.Secrets = []string{secret}
		}
		ep, err := adm.Create(ctx, spec)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, withSecrets(ep))
		}
		fmt.Fprintf(stdout, "id:     %s\nsecret: %s\ntopic:  %s\n", ep.ID, ep.Secrets[0], kcfg.Topics().Endpoint(ep.ID))
	case "update":
		ep, err := ops.UpdateEndpoint(ctx, adm, st.reg, id, change)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, ep)
		}
		fmt.Fprintf(stdout, "%s updated\n", ep.ID)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		printEndpointSettings(tw, ep)
		return tw.Flush()
	case "rotate":
		ep, added, err := ops.RotateSecret(ctx, adm, st.reg, id, ops.Rotation{Secret: secret, DropOld: dropOld})
		if err != nil {
			return err
		}
		switch {
		case added != "" && len(ep.Secrets) > 1:
			fmt.Fprintf(stdout, "id:      %s\nsecret:  %s\nsigning: %d secrets, newest first; every delivery carries a signature for each\n", ep.ID, added, len(ep.Secrets))
			fmt.Fprintf(stdout, "\nOnce the receiver trusts the new secret, end the rotation with:\n  hookstream endpoints rotate --id %s --drop-old\n", ep.ID)
		case added != "":
			fmt.Fprintf(stdout, "id:      %s\nsecret:  %s\nsigning: this secret only (every other secret was dropped at once)\n", ep.ID, added)
		case dropOld:
			fmt.Fprintf(stdout, "%s signs with its newest secret only\n", ep.ID)
		}
	case "list":
		eps := st.reg.List(tenant)
		if asJSON {
			return printJSON(stdout, eps)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tSTATUS\tEVENTS\tURL")
		for _, e := range eps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, e.TenantID, e.Status, strings.Join(e.EventTypes, ","), e.URL)
		}
		return tw.Flush()
	case "get":
		ep, ok := st.reg.Get(id)
		if !ok {
			return fmt.Errorf("%w: %s", registry.ErrNotFound, id)
		}
		return printJSON(stdout, ep)
	case "disable", "enable":
		status := registry.StatusActive
		if sub == "disable" {
			status = registry.StatusDisabled
		}
		ep, err := adm.SetStatus(ctx, id, status, reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", ep.ID, ep.Status)
	case "delete":
		if err := adm.Delete(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s deleted; run 'hookstream endpoints purge' after the grace period to remove its topic\n", id)
	case "purge":
		ids, err := adm.Purge(ctx, grace)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d endpoint(s) %s\n", len(ids), strings.Join(ids, " "))
	}
	return nil
}

// updateChange builds the change of "endpoints update" from the flags set.
func updateChange(set map[string]bool, url, events string, partitions int, desc string, lim *limitFlags) (ops.EndpointChange, error) {
	var c ops.EndpointChange
	if set["url"] {
		c.URL = &url
	}
	if set["events"] {
		c.EventTypes = splitList(events)
		if len(c.EventTypes) == 0 {
			return c, errors.New("--events: subscribe to at least one pattern (exact type, category.* or *)")
		}
	}
	if set["partitions"] {
		if partitions < 1 || partitions > registry.MaxPartitions {
			return c, fmt.Errorf("--partitions must be 1..%d, got %d", registry.MaxPartitions, partitions)
		}
		n := int32(partitions)
		c.Partitions = &n
	}
	if set["rate-limit"] {
		c.RateLimit = &lim.rateLimit
	}
	if set["max-in-flight"] {
		n, err := lim.maxInFlight32()
		if err != nil {
			return c, err
		}
		c.MaxInFlight = &n
	}
	if set["ordered"] {
		c.Ordered = &lim.ordered
	}
	if set["retry-schedule"] {
		sched, err := lim.retrySchedule()
		if err != nil {
			return c, fmt.Errorf("--retry-schedule: %w", err)
		}
		if sched == nil {
			sched = []time.Duration{}
		}
		c.RetrySchedule = &sched
	}
	if set["description"] {
		c.Description = &desc
	}
	return c, nil
}

// printEndpointSettings writes an endpoint's settings, one per line.
func printEndpointSettings(tw io.Writer, e *registry.Endpoint) {
	sched := "deliverer default"
	if len(e.RetryScheduleMS) > 0 {
		parts := make([]string, len(e.RetryScheduleMS))
		for i, ms := range e.RetryScheduleMS {
			parts[i] = kafka.FormatDelay(time.Duration(ms) * time.Millisecond)
		}
		sched = strings.Join(parts, ",")
	}
	rate := "unlimited"
	if e.RateLimit > 0 {
		rate = fmt.Sprintf("%g/s", e.RateLimit)
	}
	inflight := "deliverer default"
	if e.MaxInFlight > 0 {
		inflight = fmt.Sprint(e.MaxInFlight)
	}
	fmt.Fprintf(tw, "  url\t%s\n  events\t%s\n  partitions\t%d\n  ordered\t%t\n  rate limit\t%s\n  max in flight\t%s\n  retry schedule\t%s\n  description\t%s\n",
		e.URL, strings.Join(e.EventTypes, ","), e.Partitions, e.Ordered, rate, inflight, sched, e.Description)
}

func withSecrets(e *registry.Endpoint) any {
	return struct {
		*registry.Endpoint
		Secrets []string `json:"secrets"`
	}{e, e.Secrets}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
