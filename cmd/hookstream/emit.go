package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hookstream/hookstream/producer"
)

func runEmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("emit", "Publish one event. --data is JSON, @file, or - for standard input; it is validated against the type's latest schema.", stderr)
	var kf kafkaFlags
	var typ, tenant, data, prev, key, id string
	kf.register(f)
	f.perCall = true
	f.str(&typ, "type", "", "event type, e.g. payment.succeeded (required)")
	f.str(&tenant, "tenant", "", "tenant id (required)")
	f.str(&data, "data", "", "event data as JSON, @file or - (required)")
	f.str(&prev, "previous-data", "", "previous state for *.updated events, JSON or @file")
	f.str(&key, "key", "", "ordering key (default: the tenant id)")
	f.str(&id, "id", "", "event id (default: a new evt_ id)")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	var missing []string
	for _, fl := range []struct{ name, v string }{{"--type", typ}, {"--tenant", tenant}, {"--data", data}} {
		if fl.v == "" {
			missing = append(missing, fl.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "hookstream emit: missing %s\n", strings.Join(missing, ", "))
		return errUsage
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	body, err := readArg(data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	ev := producer.Event{Type: typ, TenantID: tenant, Data: body, Key: key, ID: id}
	if prev != "" {
		pb, err := readArg(prev)
		if err != nil {
			return fmt.Errorf("--previous-data: %w", err)
		}
		ev.PreviousData = pb
	}
	p, err := producer.New(producer.WithKafkaConfig(kcfg))
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Record(ev); err != nil { // validate before touching Kafka
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	evID, err := p.Publish(ctx, ev)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, evID)
	return nil
}

// readArg returns v's bytes, the contents of file @path, or stdin for "-";
// the result must be valid JSON.
func readArg(v string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case v == "-":
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	case strings.HasPrefix(v, "@"):
		b, err = os.ReadFile(v[1:])
	default:
		b = []byte(v)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	return b, nil
}
