package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/registry"
)

const endpointsSynopsis = `endpoints <subcommand> [flags]

Manage endpoints in the registry topic.

  endpoints add --tenant T --url U --events 'payment.*,order.created' [--partitions N] [--secret whsec_…]
  endpoints list [--tenant T] [--json]
  endpoints get --id ID
  endpoints disable --id ID [--reason R]
  endpoints enable --id ID
  endpoints delete --id ID          stop deliveries now; the topic is removed by purge after the grace period
  endpoints purge [--grace 24h]     remove topics and records of endpoints deleted longer ago than the grace`

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
	var asJSON bool
	var grace time.Duration
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
		f.boolean(&asJSON, "json", false, "print the endpoint as JSON, secret included")
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
	case "get", "enable", "delete", "disable":
		required = []struct{ name, v string }{{"--id", id}}
	}
	for _, r := range required {
		if r.v == "" {
			fmt.Fprintf(stderr, "hookstream endpoints %s: %s is required\n", sub, r.name)
			return errUsage
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
		spec := registry.Endpoint{ID: id, TenantID: tenant, URL: url, Partitions: int32(partitions), Description: desc}
		for _, e := range strings.Split(events, ",") {
			if e = strings.TrimSpace(e); e != "" {
				spec.EventTypes = append(spec.EventTypes, e)
			}
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
