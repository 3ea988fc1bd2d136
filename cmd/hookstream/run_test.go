package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafka"
)

// These tests call run directly with arguments that fail before any Kafka
// connection. Every flag points at an unroutable loopback port anyway, and
// each run has a deadline: a run that tried to reach Kafka fails the test
// instead of hanging it.

// cliEnv clears every HOOKSTREAM_* variable for the test (flags read them)
// and points the brokers at a port nothing listens on.
func cliEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "HOOKSTREAM_") {
			t.Setenv(k, "") // restores the old value when the test ends
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOOKSTREAM_BROKERS", "127.0.0.1:1")
}

// cliRun runs hookstream with args and returns its exit code and output.
func cliRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	if ctx.Err() != nil {
		t.Fatalf("hookstream %s ran until its deadline (did it try to reach Kafka?)\n%s", strings.Join(args, " "), errOut.String())
	}
	return code, out.String(), errOut.String()
}

type cliCase struct {
	args []string
	code int
	want []string // parts of stderr
}

func (tc cliCase) check(t *testing.T) {
	t.Helper()
	code, _, stderr := cliRun(t, tc.args...)
	if code != tc.code {
		t.Errorf("hookstream %s: exit %d, want %d\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stderr)
	}
	for _, w := range tc.want {
		if !strings.Contains(stderr, w) {
			t.Errorf("hookstream %s: stderr does not mention %q\nstderr: %s", strings.Join(tc.args, " "), w, stderr)
		}
	}
}

func TestRunTopLevel(t *testing.T) {
	cliEnv(t)
	code, stdout, stderr := cliRun(t)
	if code != 2 || !strings.Contains(stderr, "Usage: hookstream <command>") || stdout != "" {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, stdout, stderr)
	}
	for _, h := range []string{"help", "-h", "--help"} {
		code, stdout, stderr := cliRun(t, h)
		if code != 0 || stderr != "" {
			t.Errorf("hookstream %s: exit %d, stderr %q; want 0 and nothing on stderr", h, code, stderr)
		}
		for _, c := range commands() {
			if !strings.Contains(stdout, "  "+c.name+" ") {
				t.Errorf("hookstream %s: usage does not list %q\n%s", h, c.name, stdout)
			}
		}
	}
	code, stdout, stderr = cliRun(t, "bogus", "--brokers", "127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, `unknown command "bogus"`) || !strings.Contains(stderr, "Commands:") || stdout != "" {
		t.Errorf("unknown command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestRunEmitErrors(t *testing.T) {
	cliEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	const data = `{"order_id":"ord_1","payment_id":"pay_1","amount":1,"currency":"USD","method":"card","paid_at":0}`
	for _, tc := range []cliCase{
		{[]string{"emit"}, 2, []string{"hookstream emit: missing --type, --tenant, --data"}},
		{[]string{"emit", "--type", "order.paid"}, 2, []string{"missing --tenant, --data"}},
		{[]string{"emit", "--tenant", "t1", "--data", "{}"}, 2, []string{"missing --type"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", "notjson"}, 1, []string{"hookstream emit: --data: not valid JSON"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", "@" + bad}, 1, []string{"--data: not valid JSON"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", "@" + filepath.Join(dir, "missing.json")}, 1, []string{"--data: ", "missing.json"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--previous-data", "[1,"}, 1, []string{"--previous-data: not valid JSON"}},
		// Valid JSON, invalid event: rejected before Kafka is contacted.
		{[]string{"emit", "--type", "order.teleported", "--tenant", "t1", "--data", data}, 1, []string{"invalid event", `unknown event type "order.teleported"`}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", `{"order_id":1}`}, 1, []string{"invalid event", "data.order_id"}},
		// Flag syntax.
		{[]string{"emit", "--bogus"}, 2, []string{"flag provided but not defined: -bogus"}},
		{[]string{"emit", "--type", "order.paid", "extra"}, 2, []string{`unexpected argument "extra"`}},
		// Kafka settings are checked before connecting.
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--brokers", ""}, 1, []string{"no brokers"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--brokers", "kafka"}, 1, []string{`"kafka" is not host:port`}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--replication-factor", "0"}, 1, []string{"--replication-factor must be -1 or 1..32767, got 0"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--sasl-mechanism", "GSSAPI"}, 1, []string{"--sasl-mechanism", "GSSAPI"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--tls-ca", filepath.Join(dir, "none.pem")}, 1, []string{"--tls-ca"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--tls-ca", bad}, 1, []string{"--tls-ca: no PEM certificates"}},
		{[]string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data, "--topic-prefix", "a/b"}, 1, []string{"topic prefix"}},
	} {
		tc.check(t)
	}
}

func TestRunHelp(t *testing.T) {
	cliEnv(t)
	for _, args := range [][]string{
		{"emit", "--help"}, {"emit", "-h"}, {"router", "--help"}, {"deliverer", "--help"}, {"dev", "--help"},
		{"endpoints", "--help"}, {"endpoints", "add", "--help"}, {"endpoints", "list", "-h"},
	} {
		code, stdout, stderr := cliRun(t, args...)
		help := stdout + stderr
		if code != 0 || !strings.Contains(help, "Usage: hookstream") {
			t.Errorf("hookstream %s: exit %d, output %q; want 0 and the usage", strings.Join(args, " "), code, help)
		}
	}
	// Every service flag shows the variable that sets it.
	_, stdout, stderr := cliRun(t, "deliverer", "--help")
	for _, v := range []string{"HOOKSTREAM_BROKERS", "HOOKSTREAM_RETRY_SCHEDULE", "HOOKSTREAM_RETRY_JITTER", "HOOKSTREAM_METRICS_ADDR"} {
		if !strings.Contains(stdout+stderr, v) {
			t.Errorf("deliverer --help does not mention %s", v)
		}
	}
}

func TestRunEnvironment(t *testing.T) {
	const data = `{"order_id":"ord_1","payment_id":"pay_1","amount":1,"currency":"USD","method":"card","paid_at":0}`
	emit := []string{"emit", "--type", "order.paid", "--tenant", "t1", "--data", data}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		code int
		want []string
	}{
		// A malformed variable is a usage error naming the variable.
		{map[string]string{"HOOKSTREAM_EVENTS_PARTITIONS": "abc"}, []string{"router"}, 2, []string{"hookstream router: HOOKSTREAM_EVENTS_PARTITIONS=\"abc\"", "invalid syntax"}},
		{map[string]string{"HOOKSTREAM_MAX_POLL_RECORDS": "many"}, []string{"router"}, 2, []string{"HOOKSTREAM_MAX_POLL_RECORDS"}},
		{map[string]string{"HOOKSTREAM_RETRY_JITTER": "lots"}, []string{"deliverer"}, 2, []string{"HOOKSTREAM_RETRY_JITTER"}},
		{map[string]string{"HOOKSTREAM_ATTEMPT_TIMEOUT": "5"}, []string{"deliverer"}, 2, []string{"HOOKSTREAM_ATTEMPT_TIMEOUT", "missing unit"}},
		{map[string]string{"HOOKSTREAM_RETRY_CLIENT_ERRORS": "maybe"}, []string{"deliverer"}, 2, []string{"HOOKSTREAM_RETRY_CLIENT_ERRORS"}},
		{map[string]string{"HOOKSTREAM_TLS": "maybe"}, emit, 2, []string{"HOOKSTREAM_TLS"}},
		// --grace is per call: HOOKSTREAM_GRACE is ignored, and the run goes on to fail on the log format.
		{map[string]string{"HOOKSTREAM_GRACE": "x", "HOOKSTREAM_LOG_FORMAT": "xml"}, []string{"endpoints", "purge"}, 1, []string{"--log-format"}},
		// Variables set flags...
		{map[string]string{"HOOKSTREAM_REPLICATION_FACTOR": "0"}, emit, 1, []string{"got 0"}},
		{map[string]string{"HOOKSTREAM_LOG_FORMAT": "xml"}, []string{"router"}, 1, []string{"--log-format must be text or json"}},
		// ...an explicit flag wins...
		{map[string]string{"HOOKSTREAM_REPLICATION_FACTOR": "3"}, append(slices.Clone(emit), "--replication-factor", "0"), 1, []string{"got 0"}},
		// ...and flags that describe one invocation are not read from the environment.
		{map[string]string{"HOOKSTREAM_TYPE": "order.paid", "HOOKSTREAM_TENANT": "t1", "HOOKSTREAM_DATA": "{}"}, []string{"emit"}, 2, []string{"missing --type, --tenant, --data"}},
		{map[string]string{"HOOKSTREAM_ID": "ep_1"}, []string{"endpoints", "get"}, 2, []string{"--id is required"}},
	} {
		var names []string
		for k, v := range tc.env {
			names = append(names, k+"="+v)
		}
		slices.Sort(names)
		t.Run(strings.Join(names, ","), func(t *testing.T) {
			cliEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cliCase{tc.args, tc.code, tc.want}.check(t)
		})
	}
}

func TestRunServiceSetupErrors(t *testing.T) {
	cliEnv(t)
	for _, tc := range []cliCase{
		{[]string{"router", "--log-format", "xml"}, 1, []string{"hookstream router: --log-format must be text or json"}},
		{[]string{"router", "--log-level", "loud"}, 1, []string{"--log-level"}},
		{[]string{"router", "--replication-factor", "-2"}, 1, []string{"--replication-factor"}},
		{[]string{"router", "surplus"}, 2, []string{`unexpected argument "surplus"`}},
		{[]string{"deliverer", "--log-format", "yaml"}, 1, []string{"--log-format"}},
		{[]string{"deliverer", "--attempt-timeout", "soon"}, 2, []string{"invalid value"}},
		{[]string{"deliverer", "--retry-jitter", "x"}, 2, []string{"invalid value"}},
		{[]string{"dev", "--kafka-addr", "nohost"}, 1, []string{"--kafka-addr"}},
		{[]string{"dev", "--kafka-addr", "127.0.0.1:port"}, 1, []string{"--kafka-addr: bad port"}},
		{[]string{"dev", "--log-level", "chatty"}, 1, []string{"--log-level"}},
	} {
		tc.check(t)
	}
}

func TestRunEndpointsUsage(t *testing.T) {
	cliEnv(t)
	for _, tc := range []cliCase{
		{[]string{"endpoints"}, 2, []string{"Usage: hookstream endpoints"}},
		{[]string{"endpoints", "--tenant", "t1"}, 2, []string{"Usage: hookstream endpoints"}},
		{[]string{"endpoints", "bogus"}, 2, []string{`unknown subcommand "bogus"`, "Usage: hookstream endpoints"}},
		{[]string{"endpoints", "add"}, 2, []string{"hookstream endpoints add: --tenant is required"}},
		{[]string{"endpoints", "add", "--tenant", "t1"}, 2, []string{"--url is required"}},
		{[]string{"endpoints", "add", "--tenant", "t1", "--url", "http://x"}, 2, []string{"--events is required"}},
		{[]string{"endpoints", "get"}, 2, []string{"--id is required"}},
		{[]string{"endpoints", "disable"}, 2, []string{"--id is required"}},
		{[]string{"endpoints", "enable", "--reason", "x"}, 2, []string{"flag provided but not defined: -reason"}},
		{[]string{"endpoints", "delete"}, 2, []string{"--id is required"}},
		{[]string{"endpoints", "purge", "--grace", "a while"}, 2, []string{"invalid value"}},
		{[]string{"endpoints", "list", "--log-format", "xml"}, 1, []string{"--log-format"}},
		{[]string{"endpoints", "list", "--brokers", ""}, 1, []string{"no brokers"}},
	} {
		tc.check(t)
	}
	code, stdout, stderr := cliRun(t, "endpoints", "--help")
	if code != 0 || !strings.Contains(stdout, "Usage: hookstream endpoints") || stderr != "" {
		t.Errorf("endpoints --help: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// delivererConfig parses args as the deliverer command does and builds its
// deliverer.Config.
func delivererConfig(t *testing.T, args ...string) (deliverer.Config, error) {
	t.Helper()
	f := newFlags("deliverer", "test", &bytes.Buffer{})
	var df delivererFlags
	df.register(f)
	if err := f.parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	kcfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}}
	return df.config(kcfg, slog.New(slog.DiscardHandler), nil)
}

func TestDelivererFlagsConfig(t *testing.T) {
	cliEnv(t)
	cfg, err := delivererConfig(t)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Schedule, deliverer.DefaultSchedule) || cfg.Jitter != 0.2 || cfg.MaxInFlightPerPartition != 16 ||
		cfg.MaxInFlight != 1024 || cfg.InFlightLease != 2*time.Second || cfg.MaxInFlightPerEndpoint != 64 || cfg.HTTPClient != "fasthttp" || cfg.AttemptTimeout != 15*time.Second || cfg.BreakerFailures != 5 ||
		cfg.RetryClientErrors || cfg.AllowPrivateTargets {
		t.Errorf("default flags: %+v", cfg)
	}
	if _, err := deliverer.New(cfg, nil, nil); err != nil {
		t.Errorf("deliverer.New with the default flags: %v", err)
	}

	cfg, err = delivererConfig(t, "--retry-schedule", "1s, 1m", "--retry-jitter", "0", "--retry-client-errors", "--allow-private-targets",
		"--max-inflight-per-endpoint", "3", "--breaker-open-timeout", "1m", "--max-inflight", "50", "--inflight-lease", "500ms", "--http-client", "net/http")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Schedule, deliverer.Schedule{time.Second, time.Minute}) || cfg.Jitter != -1 || !cfg.RetryClientErrors ||
		!cfg.AllowPrivateTargets || cfg.MaxInFlightPerEndpoint != 3 || cfg.BreakerOpenTimeout != time.Minute ||
		cfg.MaxInFlight != 50 || cfg.InFlightLease != 500*time.Millisecond || cfg.HTTPClient != "net/http" {
		t.Errorf("explicit flags: %+v (--retry-jitter 0 must mean no jitter: -1)", cfg)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--retry-schedule", "bogus"}, "--retry-schedule"},
		{[]string{"--retry-schedule", "5s,0s"}, "must be positive"},
		{[]string{"--retry-schedule", "5s,-1m"}, "must be positive"},
		{[]string{"--retry-jitter", "2"}, "--retry-jitter must be in [0, 1), got 2"},
		{[]string{"--retry-jitter", "1"}, "--retry-jitter"},
		{[]string{"--retry-jitter", "-0.1"}, "--retry-jitter"},
		{[]string{"--max-inflight", "0"}, "--max-inflight must be 1.."},
		{[]string{"--http-client", "curl"}, `--http-client: unknown HTTP client "curl": want fasthttp or net/http`},
		{[]string{"--inflight-lease", "0s"}, "--inflight-lease must be positive"},
		{[]string{"--attempt-timeout", "-1s"}, "--attempt-timeout must be positive"},
	} {
		if _, err := delivererConfig(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deliverer %s: config error %v, want one about %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}

	// A variable sets the schedule; an explicit flag wins over it.
	t.Setenv("HOOKSTREAM_RETRY_SCHEDULE", "2s")
	if cfg, err := delivererConfig(t); err != nil || !slices.Equal(cfg.Schedule, deliverer.Schedule{2 * time.Second}) {
		t.Errorf("HOOKSTREAM_RETRY_SCHEDULE=2s: schedule %v, %v", cfg.Schedule, err)
	}
	if cfg, err := delivererConfig(t, "--retry-schedule", "3s"); err != nil || !slices.Equal(cfg.Schedule, deliverer.Schedule{3 * time.Second}) {
		t.Errorf("--retry-schedule 3s over the variable: schedule %v, %v", cfg.Schedule, err)
	}
}

// The deliverer (and dev) check their delivery flags only after opening
// the stack: with a bad --retry-schedule or --retry-jitter the command
// first connects to Kafka, creates the core topics and opens the registry,
// and an unreachable broker hides the flag error behind "cannot reach Kafka".
func TestRunDelivererChecksFlagsBeforeKafka(t *testing.T) {
	cliEnv(t)
	for _, tc := range []cliCase{
		{[]string{"deliverer", "--retry-schedule", "5s,soon"}, 2, []string{"--retry-schedule"}},
		{[]string{"deliverer", "--retry-jitter", "2"}, 2, []string{"--retry-jitter"}},
	} {
		code, _, stderr := cliRun(t, tc.args...)
		if strings.Contains(stderr, "cannot reach Kafka") || !strings.Contains(stderr, tc.want[0]) || code == 0 {
			t.Errorf("hookstream %s: exit %d, stderr %q; want the flag error without contacting Kafka", strings.Join(tc.args, " "), code, stderr)
		}
	}
}

// The router rejects an unknown --guarantee or a --commit-interval under
// franz-go's minimum before it contacts Kafka.
func TestRunRouterChecksFlagsBeforeKafka(t *testing.T) {
	cliEnv(t)
	for _, tc := range []cliCase{
		{[]string{"router", "--guarantee", "exactly-twice"}, 2, []string{`--guarantee must be exactly-once or at-least-once, got "exactly-twice"`}},
		{[]string{"router", "--guarantee", "at-least-once", "--commit-interval", "50ms"}, 2, []string{"--commit-interval must be at least 100ms, got 50ms"}},
	} {
		code, _, stderr := cliRun(t, tc.args...)
		if strings.Contains(stderr, "cannot reach Kafka") || !strings.Contains(stderr, tc.want[0]) || code != tc.code {
			t.Errorf("hookstream %s: exit %d, stderr %q; want exit %d and %q without contacting Kafka", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want[0])
		}
	}
}
