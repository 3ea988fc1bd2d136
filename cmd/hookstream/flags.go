package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hookstream/hookstream/pkg/kafka"
)

// flags is a flag.FlagSet whose every flag also reads HOOKSTREAM_<NAME>
// from the environment; an explicit flag wins over the environment.
type flags struct {
	*flag.FlagSet
	envErrs map[string]error // flag name -> its environment variable did not parse
	// perCall, when set, registers flags that describe one invocation (an
	// event, an endpoint id) and are not read from the environment, so a
	// variable left exported for one command cannot leak into another.
	perCall bool
}

func newFlags(name, synopsis string, out io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: hookstream %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs}
}

func envName(flagName string) string {
	return "HOOKSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) env(name string, set func(string) error) {
	if f.perCall {
		return
	}
	if v, ok := os.LookupEnv(envName(name)); ok {
		if err := set(v); err != nil {
			if f.envErrs == nil {
				f.envErrs = map[string]error{}
			}
			f.envErrs[name] = fmt.Errorf("%s=%q: %w", envName(name), v, err)
		}
	}
}

func (f *flags) str(p *string, name, def, usage string) {
	*p = def
	f.env(name, func(v string) error { *p = v; return nil })
	f.StringVar(p, name, *p, f.usage(name, usage))
}

func (f *flags) integer(p *int, name string, def int, usage string) {
	*p = def
	f.env(name, func(v string) (err error) { *p, err = strconv.Atoi(v); return err })
	f.IntVar(p, name, *p, f.usage(name, usage))
}

func (f *flags) float(p *float64, name string, def float64, usage string) {
	*p = def
	f.env(name, func(v string) (err error) { *p, err = strconv.ParseFloat(v, 64); return err })
	f.Float64Var(p, name, *p, f.usage(name, usage))
}

func (f *flags) boolean(p *bool, name string, def bool, usage string) {
	*p = def
	f.env(name, func(v string) (err error) { *p, err = strconv.ParseBool(v); return err })
	f.BoolVar(p, name, *p, f.usage(name, usage))
}

func (f *flags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	f.env(name, func(v string) (err error) { *p, err = time.ParseDuration(v); return err })
	f.DurationVar(p, name, *p, f.usage(name, usage))
}

func (f *flags) usage(name, text string) string {
	if f.perCall {
		return text
	}
	return text + " [" + envName(name) + "]"
}

// parse parses args and reports environment errors too.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	// A malformed variable matters only if its flag was not given.
	f.Visit(func(fl *flag.Flag) { delete(f.envErrs, fl.Name) })
	for _, name := range slices.Sorted(maps.Keys(f.envErrs)) {
		return f.envErrs[name]
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", f.Arg(0))
	}
	return nil
}

// kafkaFlags are the connection flags every command that talks to Kafka has.
type kafkaFlags struct {
	brokers, clientID, prefix             string
	rf, minISR, eventsPartitions          int
	tls                                   bool
	tlsCA, tlsCert, tlsKey                string
	saslMechanism, saslUser, saslPassword string
}

func (k *kafkaFlags) register(f *flags) {
	f.str(&k.brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka seed brokers")
	f.str(&k.clientID, "client-id", "hookstream", "Kafka client id prefix")
	f.str(&k.prefix, "topic-prefix", kafka.DefaultPrefix, "prefix of every topic name")
	f.integer(&k.rf, "replication-factor", -1, "replication factor of topics Hookstream creates (-1 = broker default)")
	f.integer(&k.minISR, "min-insync-replicas", 0, "min.insync.replicas of topics Hookstream creates (0 = broker default)")
	f.integer(&k.eventsPartitions, "events-partitions", 6, "partitions of the events topic when Hookstream creates it")
	f.boolean(&k.tls, "tls", false, "connect to Kafka with TLS")
	f.str(&k.tlsCA, "tls-ca", "", "PEM file of CA certificates to trust (default: system roots)")
	f.str(&k.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	f.str(&k.tlsKey, "tls-key", "", "PEM client key for mutual TLS")
	f.str(&k.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty = none)")
	f.str(&k.saslUser, "sasl-user", "", "SASL user name")
	f.str(&k.saslPassword, "sasl-password", "", "SASL password")
}

func (k *kafkaFlags) config() (kafka.Config, error) {
	cfg := kafka.Config{
		ClientID:          k.clientID,
		Prefix:            k.prefix,
		ReplicationFactor: int16(k.rf),
		MinInsyncReplicas: k.minISR,
		EventsPartitions:  int32(k.eventsPartitions),
	}
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if k.eventsPartitions < 1 || k.eventsPartitions > 100_000 {
		return cfg, fmt.Errorf("--events-partitions must be 1..100000, got %d", k.eventsPartitions)
	}
	if k.rf < -1 || k.rf == 0 || k.rf > 32767 {
		return cfg, fmt.Errorf("--replication-factor must be -1 or 1..32767, got %d", k.rf)
	}
	if k.tls || k.tlsCA != "" || k.tlsCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if k.tlsCA != "" {
			pem, err := os.ReadFile(k.tlsCA)
			if err != nil {
				return cfg, fmt.Errorf("--tls-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("--tls-ca: no PEM certificates in %s", k.tlsCA)
			}
		}
		if k.tlsCert != "" || k.tlsKey != "" {
			cert, err := tls.LoadX509KeyPair(k.tlsCert, k.tlsKey)
			if err != nil {
				return cfg, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	var mech sasl.Mechanism
	switch strings.ToUpper(k.saslMechanism) {
	case "":
	case "PLAIN":
		mech = plain.Auth{User: k.saslUser, Pass: k.saslPassword}.AsMechanism()
	case "SCRAM-SHA-256":
		mech = scram.Auth{User: k.saslUser, Pass: k.saslPassword}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		mech = scram.Auth{User: k.saslUser, Pass: k.saslPassword}.AsSha512Mechanism()
	default:
		return cfg, fmt.Errorf("--sasl-mechanism: unknown mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", k.saslMechanism)
	}
	cfg.SASL = mech
	return cfg, cfg.Validate()
}

// logFlags configure the process logger.
type logFlags struct{ level, format string }

func (l *logFlags) register(f *flags) {
	f.str(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	f.str(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("--log-format must be text or json")
}
