// Command hookstream runs Hookstream's services and operator commands.
//
//	hookstream dev         everything on an embedded broker, with a demo receiver
//	hookstream router      the fan-out stage
//	hookstream deliverer   the delivery stage
//	hookstream emit        publish one event
//	hookstream endpoints   manage endpoints (add, update, rotate, list, get, disable, enable, delete, purge)
//	hookstream dlq         list and redrive dead letters
//	hookstream replay      deliver an endpoint's events again from a point in time
//
// Every flag can also be set with an environment variable HOOKSTREAM_<FLAG>,
// e.g. HOOKSTREAM_BROKERS for --brokers. Run a command with --help for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

type command struct {
	name, synopsis string
	run            func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "Run everything on an embedded Kafka (kfake) with a demo receiver and sample events.", runDev},
		{"kfake", "Run the embedded Kafka-protocol broker alone (development, benchmarks).", runKfake},
		{"router", "Run the router: fan events out to endpoint topics.", runRouter},
		{"deliverer", "Run the deliverer: sign and POST endpoint-topic records.", runDeliverer},
		{"emit", "Publish one event to the events topic.", runEmit},
		{"endpoints", "Manage endpoints: add, update, rotate, list, get, disable, enable, delete, purge.", runEndpoints},
		{"dlq", "Dead letters: list them, redrive them to their endpoints.", runDLQ},
		{"replay", "Deliver an endpoint's events again from a point in time.", runReplay},
	}
}

// defaultGCPercent is the garbage collector's target unless GOGC is set.
// The services keep a small live heap and allocate per delivery; collecting
// at 4× the live heap instead of 2× took a fifth off the deliverer's CPU per
// delivery in the benchmark (make bench) for a few MB more memory.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: hookstream <command> [flags]\n\nCommands:")
		for _, c := range commands() {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.synopsis)
		}
		fmt.Fprintln(w, "\nEvery flag can also be set as HOOKSTREAM_<FLAG> (e.g. HOOKSTREAM_BROKERS).\nRun 'hookstream <command> --help' for a command's flags.")
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "hookstream %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "hookstream: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses and turns flag errors into errUsage (the flag package
// has printed them).
func parseFlags(f *flags, args []string) error {
	if err := f.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		fmt.Fprintf(f.Output(), "hookstream %s: %v\n", f.Name(), err)
		return errUsage
	}
	return nil
}
