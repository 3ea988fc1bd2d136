package kafkatest

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookstream/hookstream/pkg/conns"
)

func startFake(tb testing.TB, cfg config) *Cluster {
	tb.Helper()
	tr := &connTracker{byAddr: make(map[string]*trackedListener)}
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.nodes),
		kfake.ListenFn(tr.listen), // kfake binds 127.0.0.1 itself
		// Like the real cluster's num.partitions=1 (CreateTopics with -1).
		kfake.DefaultNumPartitions(1),
		// No kfake.AllowAutoTopicCreation: a missing topic stays missing.
	}
	opts = append(opts, cfg.kfakeOpts...)
	fc, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatalf("kafkatest: kfake.NewCluster: %v", err)
	}
	tb.Cleanup(fc.Close)
	c := &Cluster{Kind: KindKfake, Addrs: fc.ListenAddrs(), fake: fc, conns: tr}
	tb.Logf("kafkatest: kfake cluster with %d node(s) at %v", cfg.nodes, c.Addrs)
	return c
}

// kfake's node IDs are 0..n-1 in the order of ListenAddrs.
func (c *Cluster) stopFakeNode(tb testing.TB, i int) {
	tb.Helper()
	if err := c.fake.RemoveNode(int32(i)); err != nil {
		tb.Fatalf("kafkatest: kfake stop node %d: %v", i, err)
	}
	// RemoveNode closes the listener only; drop live connections too, as a
	// dead broker would.
	c.conns.closeConns(c.Addrs[i])
}

func (c *Cluster) startFakeNode(tb testing.TB, i int) {
	tb.Helper()
	_, port, err := net.SplitHostPort(c.Addrs[i])
	if err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	p, _ := strconv.Atoi(port)
	if _, _, err := c.fake.AddNode(int32(i), p); err != nil {
		tb.Fatalf("kafkatest: kfake start node %d on port %d: %v", i, p, err)
	}
}

// connTracker remembers the connections each kfake listener accepted so that
// stopping a node can cut them.
type connTracker struct {
	mu     sync.Mutex
	byAddr map[string]*trackedListener
}

func (t *connTracker) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln}
	t.mu.Lock()
	t.byAddr[ln.Addr().String()] = tl
	t.mu.Unlock()
	return tl, nil
}

func (t *connTracker) closeConns(addr string) {
	t.mu.Lock()
	tl := t.byAddr[addr]
	delete(t.byAddr, addr)
	t.mu.Unlock()
	if tl != nil {
		tl.closeAll()
	}
}

type trackedListener struct {
	net.Listener
	conns conns.Set
}

func (l *trackedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.conns.Track(conn), nil
}

func (l *trackedListener) closeAll() {
	l.Listener.Close()
	l.conns.CloseAll()
}
