package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runKfake runs the embedded broker alone, so the router and deliverer can
// run as separate processes against it (benchmarks, local multi-process
// setups) without a JVM.
func runKfake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("kfake", "Run the embedded Kafka-protocol broker (franz-go's kfake) on its own until interrupted.\nIt speaks the real protocol (groups, transactions, compaction) but does not replicate: for development and benchmarks, not production.", stderr)
	var addr, dataDir string
	var syncWrites bool
	f.str(&addr, "kafka-addr", "127.0.0.1:9092", "listen address (loopback only; port 0 picks a free one)")
	f.str(&dataDir, "data-dir", "", "persist to this directory (empty = in memory)")
	f.boolean(&syncWrites, "sync-writes", false, "fsync every produce")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--kafka-addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--kafka-addr: the embedded broker listens on loopback only, got %q", host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--kafka-addr: bad port %q", portStr)
	}
	opts := []kfake.Opt{kfake.Ports(port)}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(stdout, c.ListenAddrs()[0])
	<-ctx.Done()
	return nil
}
