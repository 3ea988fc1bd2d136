package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptTimeout bounds one scripts/kafka.sh run; the script has its own,
// shorter start timeout (HOOKSTREAM_KAFKA_START_TIMEOUT, 90 s by default).
const scriptTimeout = 5 * time.Minute

func startReal(tb testing.TB, cfg config) *Cluster {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatalf("kafkatest: real Kafka needs scripts/kafka.sh: %v", err)
	}
	// Not tb.TempDir: the logs stay when the test fails.
	dir, err := os.MkdirTemp("", "kafkatest-")
	if err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	c := &Cluster{Kind: KindKafka, Dir: dir, script: filepath.Join(root, "scripts", "kafka.sh")}

	// Registered first so it runs last, after the cluster stopped.
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kafkatest: test failed; Kafka logs kept in %s/node-*/server.log", dir)
			return
		}
		os.RemoveAll(dir)
	})

	start := time.Now()
	stdout, stderr, err := c.exec("start", "--dir", dir, "--nodes", fmt.Sprint(cfg.nodes),
		"--owner-pid", fmt.Sprint(os.Getpid()))
	if err != nil {
		// The script stops what it started on failure; make sure anyway.
		_, _, _ = c.exec("stop", "--dir", dir)
		tails := ""
		if !strings.Contains(stderr, "----- last 50 lines") { // the script did not show them
			tails = c.logTails(50)
		}
		tb.Fatalf("kafkatest: scripts/kafka.sh start --nodes %d failed: %v\n%s%s", cfg.nodes, err, stderr, tails)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kafkatest: broker logs at test failure:\n%s", c.logTails(30))
		}
		if _, stderr, err := c.exec("stop", "--dir", dir); err != nil {
			tb.Errorf("kafkatest: scripts/kafka.sh stop: %v\n%s", err, stderr)
		}
	})
	line := strings.TrimSpace(stdout)
	if line == "" || strings.Contains(line, "\n") {
		tb.Fatalf("kafkatest: scripts/kafka.sh start printed %q, want one line of addresses\n%s", stdout, stderr)
	}
	c.Addrs = strings.Split(line, ",")
	tb.Logf("kafkatest: real Kafka, %d node(s) at %s, started in %v; logs in %s/node-*/server.log",
		cfg.nodes, line, time.Since(start).Round(10*time.Millisecond), dir)
	return c
}

// runScript runs scripts/kafka.sh CMD --dir c.Dir ARGS..., failing tb on error.
func (c *Cluster) runScript(tb testing.TB, cmd string, args ...string) {
	tb.Helper()
	start := time.Now()
	_, stderr, err := c.exec(append([]string{cmd, "--dir", c.Dir}, args...)...)
	if err != nil {
		tb.Fatalf("kafkatest: scripts/kafka.sh %s %s: %v\n%s%s", cmd, strings.Join(args, " "), err, stderr, c.logTails(50))
	}
	tb.Logf("kafkatest: scripts/kafka.sh %s %s took %v", cmd, strings.Join(args, " "), time.Since(start).Round(10*time.Millisecond))
}

func (c *Cluster) exec(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// The brokers write to their own log files, so nothing should hold the
	// pipes open once the script exits; WaitDelay is a backstop.
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// logTails returns the last n lines of every node's server.log.
func (c *Cluster) logTails(n int) string {
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "node-*", "server.log"))
	var b strings.Builder
	for _, p := range logs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "----- last %d lines of %s -----\n%s\n", len(lines), p, strings.Join(lines, "\n"))
	}
	return b.String()
}
