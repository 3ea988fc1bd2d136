package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/ids"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
)

// stage is one scenario's slice of the broker: its own topic prefix, groups,
// endpoints and receivers.
type stage struct {
	o      options
	br     *broker
	name   string
	kcfg   kafka.Config
	cat    *codec.Catalog
	cl     *kgo.Client // admin + publishing (acks=all, idempotent)
	adm    *kadm.Client
	reg    *registry.Registry
	recv   *receivers
	eps    []*registry.Endpoint
	data   []byte // the SOE data every event carries
	dir    string
	router *proc
	deliv  *proc
	// metrics are the --metrics-addr of router and deliverer, "" for none.
	metrics map[string]string
}

func newStage(ctx context.Context, o options, br *broker, dir, name string, hosts int) (*stage, error) {
	prefix := fmt.Sprintf("%s%d", name, rand.IntN(1_000_000))
	kcfg := kafka.Config{Brokers: br.addrs, Prefix: prefix, EventsPartitions: 6, ClientID: "hsbench"}
	cat, err := codec.Default()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kcfg.ClientOpts("publisher",
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.MaxBufferedRecords(100_000),
	)...)
	if err != nil {
		return nil, err
	}
	s := &stage{o: o, br: br, name: name, kcfg: kcfg, cat: cat, cl: cl, adm: kadm.NewClient(cl), dir: dir, metrics: map[string]string{}}
	if name == "tp" { // the throughput run's services serve /metrics for the latency split
		for _, role := range []string{"router", "deliverer"} {
			if s.metrics[role], err = freeAddr(); err != nil {
				cl.Close()
				return nil, err
			}
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := kcfg.EnsureTopics(tctx, s.adm, kcfg.CoreTopics()...); err != nil {
		s.close()
		return nil, err
	}
	if s.reg, err = registry.Open(tctx, kcfg, cat); err != nil {
		s.close()
		return nil, err
	}
	if s.recv, err = newReceivers(hosts); err != nil {
		s.close()
		return nil, err
	}
	if s.data, err = sampleData(cat, o.dataBytes); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *stage) close() {
	if s.router != nil {
		s.router.stop(30 * time.Second)
	}
	if s.deliv != nil {
		s.deliv.stop(40 * time.Second)
	}
	if s.recv != nil {
		s.recv.close()
	}
	if s.reg != nil {
		s.reg.Close()
	}
	s.cl.Close()
}

// sampleData is a resource.created record whose Avro encoding is about n
// bytes: the example padded with attributes.
func sampleData(cat *codec.Catalog, n int) ([]byte, error) {
	base := map[string]any{
		"resource_id": "res_01JD5Q3Z8M4W7K2N9P6R1T3V5X", "resource_type": "project", "name": "Website relaunch",
		"owner_id": "usr_01JD5PZ0A2B3C4D5E6F7G8H9J0", "visibility": "internal", "tags": []string{"q1", "marketing"},
		"checksum": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "created_at": "2026-11-23T18:21:07.412Z",
	}
	attrs := map[string]string{}
	for i := 0; ; i++ {
		base["attributes"] = attrs
		js, _ := json.Marshal(base)
		soe, err := cat.EncodeJSON("resource.created", js)
		if err != nil {
			return nil, err
		}
		if len(soe) >= n || i > 1000 {
			return soe, nil
		}
		attrs[fmt.Sprintf("attribute_%03d", i)] = "value-0123456789-abcdefghij"
	}
}

// addEndpoints creates n endpoints subscribed to "*", endpoint i for the
// tenant tenant(i), spread over the receivers' hosts.
func (s *stage) addEndpoints(ctx context.Context, n int, tenant func(i int) string, url func(i int, id string) string) error {
	adm := registry.NewAdmin(s.kcfg, s.cl, s.cat, s.reg)
	for start := 0; start < n; start += 1000 {
		var specs []registry.Endpoint
		for i := start; i < min(n, start+1000); i++ {
			id := fmt.Sprintf("ep_%s_%05d", s.kcfg.Prefix, len(s.eps)+i)
			if url == nil {
				url = s.recv.url
			}
			specs = append(specs, registry.Endpoint{ID: id, TenantID: tenant(i), URL: url(i, id), EventTypes: []string{"*"}})
		}
		eps, err := adm.CreateBatch(ctx, specs)
		if err != nil {
			return err
		}
		for _, e := range eps {
			if err := s.recv.trust(e.ID, e.Secrets); err != nil {
				return err
			}
		}
		s.eps = append(s.eps, eps...)
	}
	return nil
}

// record builds one event for tenant, occurring now.
func (s *stage) record(tenant string) (*kgo.Record, error) {
	env := &codec.Envelope{ID: ids.Event(), Type: "resource.created", TenantID: tenant, OccurredAt: time.Now().UTC().Truncate(time.Millisecond), Data: s.data}
	v, err := s.cat.EncodeEnvelope(env)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: s.kcfg.Topics().Events(), Key: []byte(tenant), Value: v}, nil
}

// publish produces n events, event i for tenant(i), and waits for all acks.
func (s *stage) publish(ctx context.Context, n int, tenant func(i int) string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		r, err := s.record(tenant(i))
		if err != nil {
			return err
		}
		wg.Add(1)
		s.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return firstErr
}

// serviceArgs are the flags router and deliverer share.
func (s *stage) serviceArgs(role string) []string {
	args := []string{"--brokers", s.br.addrs[0], "--topic-prefix", s.kcfg.Prefix, "--metrics-addr", s.metrics[role], "--log-level", "warn"}
	if s.o.profileDir != "" && s.name == "tp" {
		args = append(args, "--cpuprofile", filepath.Join(s.o.profileDir, s.br.kind+"-"+role+".prof"))
	}
	return args
}

// startRouter starts the router with -router-args, then extra.
func (s *stage) startRouter(extra ...string) error {
	args := append([]string{"router", "--group", s.kcfg.Prefix + "-router",
		"--transactional-id", s.kcfg.Prefix + "-router"}, append(s.serviceArgs("router"), strings.Fields(s.o.routerArgs)...)...)
	args = append(args, extra...)
	s.metrics["router"] = lastFlag(args, "--metrics-addr", s.metrics["router"])
	p, err := startProc(s.kcfg.Prefix+"-router", s.dir, s.o.bin, args...)
	s.router = p
	return err
}

// lastFlag is the value of the last "name value" pair in args (the one a
// flag parser keeps), or def.
func lastFlag(args []string, name, def string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			def = args[i+1]
		}
	}
	return def
}

func (s *stage) startDeliverer(extra ...string) error {
	args := append([]string{"deliverer", "--group", s.kcfg.Prefix + "-deliverer", "--allow-private-targets",
		"--max-inflight-per-partition", strconv.Itoa(s.o.inflight)}, s.serviceArgs("deliverer")...)
	args = append(append(args, strings.Fields(s.o.delivererArgs)...), extra...)
	s.metrics["deliverer"] = lastFlag(args, "--metrics-addr", s.metrics["deliverer"])
	p, err := startProc(s.kcfg.Prefix+"-deliverer", s.dir, s.o.bin, args...)
	s.deliv = p
	return err
}

// waitDelivered samples the delivered count every 100 ms until it reaches
// want, and fails if a service died or the timeout passed.
func (s *stage) waitDelivered(ctx context.Context, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.recv.delivered.Load()
		s.recv.marks.add(time.Now(), n)
		if n >= want {
			return nil
		}
		for _, p := range []*proc{s.router, s.deliv} {
			if p != nil && !p.alive() {
				return fmt.Errorf("%s exited: %s", p.name, p.tail(20))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d deliveries after %v", n, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// routerJoined waits until the router group is stable with one member that
// owns partitions of the events topic.
func (s *stage) routerJoined(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	group := s.kcfg.Prefix + "-router"
	for time.Now().Before(deadline) {
		gs, err := s.adm.DescribeGroups(ctx, group)
		if err == nil {
			g := gs[group]
			if g.Err == nil && g.State == "Stable" && len(g.Members) == 1 {
				if a, ok := g.Members[0].Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
					return nil
				}
			}
		}
		if s.router != nil && !s.router.alive() {
			return fmt.Errorf("router exited: %s", s.router.tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("router did not join its group within %v", timeout)
}

// routerCaughtUp waits until the router group has committed, on every
// partition of the events topic, the topic's end offset: everything
// published is routed and its transaction committed.
func (s *stage) routerCaughtUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	topic := s.kcfg.Topics().Events()
	for time.Now().Before(deadline) {
		if s.routedAll(ctx, topic) {
			return nil
		}
		if s.router != nil && !s.router.alive() {
			return fmt.Errorf("router exited: %s", s.router.tail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("router did not catch up within %v", timeout)
}

func (s *stage) routedAll(ctx context.Context, topic string) bool {
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return false
	}
	committed, err := s.adm.FetchOffsets(ctx, s.kcfg.Prefix+"-router")
	if err != nil {
		return false
	}
	all := true
	ends.Each(func(e kadm.ListedOffset) {
		if e.Offset == 0 {
			return
		}
		c, ok := committed.Lookup(topic, e.Partition)
		if !ok || c.Err != nil || c.At < e.Offset {
			all = false
		}
	})
	return all
}

// blackHole accepts connections and never answers.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBlackHole() (*blackHole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &blackHole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	return h, nil
}

func (h *blackHole) url() string { return "http://" + h.ln.Addr().String() + "/hole" }

func (h *blackHole) close() {
	_ = h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
}
