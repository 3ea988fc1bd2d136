package e2e

// Helpers for the crash tests: the hookstream binary run as a child process
// that can be SIGKILLed, a receiver that knows when requests arrived and how
// many are still being handled, a paced background publisher, and readers of
// topics and group offsets.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/ids"
	"github.com/hookstream/hookstream/pkg/kafkatest"
	"github.com/hookstream/hookstream/producer"
)

// ---------------------------------------------------------------------------
// The hookstream binary

var hookstreamBuild struct {
	once sync.Once
	path string
	err  error
}

// raceEnabled reports whether this test binary was built with -race; the
// child binary is built the same way so races in it are caught too.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// hookstreamBinary builds ./cmd/hookstream once per test run (with -race when
// the tests run with it) and returns its path. The binary lives in
// $TMPDIR/hookstream-e2e-bin-<pid>; directories left by earlier runs whose
// process is gone are removed (no TestMain here to clean up at exit).
func hookstreamBinary(t *testing.T) string {
	t.Helper()
	hookstreamBuild.once.Do(func() {
		root, err := kafkatest.RepoRoot()
		if err != nil {
			hookstreamBuild.err = err
			return
		}
		removeStaleBinDirs()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("hookstream-e2e-bin-%d", os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			hookstreamBuild.err = err
			return
		}
		bin := filepath.Join(dir, "hookstream")
		args := []string{"build", "-o", bin}
		if raceEnabled() {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/hookstream")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			hookstreamBuild.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		hookstreamBuild.path = bin
		fmt.Fprintf(os.Stderr, "e2e: built %s (race=%v) in %v\n", bin, raceEnabled(), time.Since(start).Round(time.Millisecond))
	})
	if hookstreamBuild.err != nil {
		t.Fatalf("building the hookstream binary: %v", hookstreamBuild.err)
	}
	return hookstreamBuild.path
}

func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "hookstream-e2e-bin-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "hookstream-e2e-bin-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// serviceArgs are the connection flags that point a hookstream service at
// this env's cluster and topics, with metrics off.
func (e *env) serviceArgs() []string {
	lvl := "info"
	if os.Getenv("HOOKSTREAM_TEST_VERBOSE") != "" {
		lvl = "debug"
	}
	args := []string{
		"--brokers=" + strings.Join(e.Kafka.Brokers, ","),
		"--topic-prefix=" + e.Kafka.Prefix,
		"--client-id=" + e.Kafka.ClientID + "-proc",
		"--events-partitions=" + strconv.Itoa(int(e.Kafka.EventsPartitions)),
		"--metrics-addr=",
		"--log-level=" + lvl,
	}
	if e.Kafka.ReplicationFactor > 0 {
		args = append(args, "--replication-factor="+strconv.Itoa(int(e.Kafka.ReplicationFactor)))
	}
	if e.Kafka.MinInsyncReplicas > 0 {
		args = append(args, "--min-insync-replicas="+strconv.Itoa(e.Kafka.MinInsyncReplicas))
	}
	return args
}

// ---------------------------------------------------------------------------
// Child processes

// hsProcess is one hookstream child process in its own process group, its
// stdout and stderr in a file under t.TempDir().
type hsProcess struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time

	done      chan struct{} // closed when the process exited
	waitErr   error         // valid after done
	signalled atomic.Bool   // we killed or stopped it on purpose
}

// startHookstream runs `hookstream args...` as a child process named name (for
// logs). The process is SIGKILLed when the test ends if still running, and its
// log is dumped into the test log when the test failed.
func startHookstream(t *testing.T, name string, args ...string) *hsProcess {
	t.Helper()
	bin := hookstreamBinary(t)
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // own process group: signal it as a whole
		Pdeathsig: syscall.SIGKILL, // never outlive the test binary
	}
	p := &hsProcess{t: t, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	// Cleanups run last-in first-out: kill first, then dump.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("----- %s (pid %d) log, last 150 lines -----\n%s", name, cmd.Process.Pid, p.logTail(150))
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p.started = time.Now()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.signal(syscall.SIGKILL)
			<-p.done
		}
		if log := p.log(); strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race:\n%s", name, p.logTail(150))
		}
	})
	t.Logf("started %s: pid %d: hookstream %s", name, cmd.Process.Pid, strings.Join(args, " "))
	return p
}

// childEnv is this process's environment without HOOKSTREAM_* variables
// (they would configure the child behind the test's back); a race in the
// child stops it at once.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HOOKSTREAM_") || strings.HasPrefix(kv, "GORACE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GORACE=halt_on_error=1")
}

func (p *hsProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *hsProcess) signal(sig syscall.Signal) {
	if sig != syscall.SIGSTOP && sig != syscall.SIGCONT {
		p.signalled.Store(true)
	}
	// Negative pid: the whole process group.
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.t.Errorf("signal %v to %s: %v", sig, p.name, err)
	}
}

// check fails the test if the process exited without being told to.
func (p *hsProcess) check() {
	p.t.Helper()
	if p.exited() && !p.signalled.Load() {
		p.t.Fatalf("%s exited on its own after %v: %v\n%s", p.name, time.Since(p.started).Round(time.Millisecond), p.waitErr, p.logTail(80))
	}
}

// kill SIGKILLs the process (a crash: no shutdown code runs) and waits until
// it is gone.
func (p *hsProcess) kill() {
	p.t.Helper()
	p.check()
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s still running 10s after SIGKILL", p.name)
	}
	p.t.Logf("killed %s (pid %d) with SIGKILL after %v", p.name, p.cmd.Process.Pid, time.Since(p.started).Round(time.Millisecond))
}

// freeze stops the process (SIGSTOP) so it sends nothing more; thaw lets it
// go on.
func (p *hsProcess) freeze() { p.t.Helper(); p.check(); p.signal(syscall.SIGSTOP) }
func (p *hsProcess) thaw()   { p.t.Helper(); p.signal(syscall.SIGCONT) }

// stop sends SIGTERM and requires a clean exit (status 0) within timeout.
func (p *hsProcess) stop(timeout time.Duration) {
	p.t.Helper()
	p.check()
	start := time.Now()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.signal(syscall.SIGKILL)
		<-p.done
		p.t.Fatalf("%s did not exit within %v of SIGTERM\n%s", p.name, timeout, p.logTail(80))
	}
	if p.waitErr != nil {
		p.t.Fatalf("%s exited with %v after SIGTERM\n%s", p.name, p.waitErr, p.logTail(80))
	}
	p.t.Logf("stopped %s (pid %d) with SIGTERM: clean exit in %v", p.name, p.cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
}

func (p *hsProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *hsProcess) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// ---------------------------------------------------------------------------
// A receiver that tracks arrival times and requests being handled

// trackedReceiver is a receiver served on its own listener through a wrapper
// that counts requests in progress and open connections, and records when
// each request finished.
type trackedReceiver struct {
	*receiver
	base   string
	active atomic.Int64
	// conns counts open connections. A killed client's requests can still
	// sit unread in the socket buffer after active drops to zero; the server
	// reads and serves them, then sees end of file and closes the
	// connection, so conns reaching zero is the point after which nothing of
	// a dead client's can still arrive.
	conns atomic.Int64

	mu       sync.Mutex
	finished []time.Time
}

func newTrackedReceiver(t *testing.T) *trackedReceiver {
	tr := &trackedReceiver{receiver: newReceiver(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.base = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: tr, ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				tr.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				tr.conns.Add(-1)
			}
		}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return tr
}

func (tr *trackedReceiver) url(path string) string { return tr.base + path }

func (tr *trackedReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	tr.active.Add(1)
	defer tr.active.Add(-1)
	tr.receiver.ServeHTTP(w, req)
	now := time.Now()
	tr.mu.Lock()
	tr.finished = append(tr.finished, now)
	tr.mu.Unlock()
}

// finishedBetween counts requests that finished in (from, to].
func (tr *trackedReceiver) finishedBetween(from, to time.Time) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, at := range tr.finished {
		if at.After(from) && !at.After(to) {
			n++
		}
	}
	return n
}

// missing returns how many of want path has not received yet.
func missing(r *receiver, path string, want map[string]bool) int {
	got := r.ids(path)
	n := 0
	for id := range want {
		if got[id] == 0 {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// Publishing

// keyedEvents returns n events for tenant with ids assigned up front and
// keys spread over 64 values, so they spread over partitions (the default key
// is the tenant, which puts a tenant's events on one partition).
func keyedEvents(t *testing.T, e *env, tenant string, n int) []producer.Event {
	t.Helper()
	types, in, _ := samples(t, e)
	evs := make([]producer.Event, n)
	for i := range evs {
		typ := types[i%len(types)]
		evs[i] = producer.Event{ID: ids.Event(), Type: typ, TenantID: tenant, Key: fmt.Sprintf("key-%02d", i%64), Data: in[typ]}
	}
	return evs
}

func eventIDs(evs []producer.Event) map[string]bool {
	m := make(map[string]bool, len(evs))
	for _, ev := range evs {
		m[ev.ID] = true
	}
	return m
}

// bgPublisher publishes events in paced batches in the background.
type bgPublisher struct {
	total   int
	done    chan struct{}
	acked   atomic.Int64 // events Kafka acknowledged
	took    time.Duration
	mu      sync.Mutex
	errs    []error // every batch error, including ones retried successfully
	retried int     // events published again after an error
	gaveUp  []string
}

// startPublisher publishes evs in batches of batch, one batch per interval.
// With retries > 0, events of a failed batch are published again (same event
// id) up to retries times: an error then counts as recovered. A publish
// attempt gets 30 s.
func startPublisher(t *testing.T, e *env, evs []producer.Event, batch int, interval time.Duration, retries int) *bgPublisher {
	p := &bgPublisher{total: len(evs), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	go func() {
		defer close(p.done)
		defer func() { p.took = time.Since(start) }()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for lo := 0; lo < len(evs); lo += batch {
			if lo > 0 {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			todo := evs[lo:min(lo+batch, len(evs))]
			for attempt := 0; len(todo) > 0; attempt++ {
				actx, acancel := context.WithTimeout(ctx, 30*time.Second)
				got, err := e.Producer.PublishBatch(actx, todo)
				acancel()
				var failed []producer.Event
				for i, ev := range todo {
					if err == nil || got[i] != "" {
						p.acked.Add(1)
					} else {
						failed = append(failed, ev)
					}
				}
				if err == nil {
					break
				}
				p.mu.Lock()
				p.errs = append(p.errs, err)
				if attempt >= retries || ctx.Err() != nil {
					for _, ev := range failed {
						p.gaveUp = append(p.gaveUp, ev.ID)
					}
					p.mu.Unlock()
					break
				}
				p.retried += len(failed)
				p.mu.Unlock()
				todo = failed
				select {
				case <-time.After(200 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

func (p *bgPublisher) isDone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the publisher to finish and fails the test if any event was
// given up on.
func (p *bgPublisher) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("publisher still running after %v (%d of %d acked)", timeout, p.acked.Load(), p.total)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		t.Logf("publisher error (retried=%v): %v", len(p.gaveUp) == 0, err)
	}
	if len(p.gaveUp) > 0 {
		t.Fatalf("publisher gave up on %d of %d events after retrying", len(p.gaveUp), p.total)
	}
	t.Logf("publisher: %d events acked in %v; %d batch errors, %d events re-published", p.acked.Load(), p.took.Round(time.Millisecond), len(p.errs), p.retried)
}

// ---------------------------------------------------------------------------
// Reading topics and offsets

// topicOffsets returns partition -> offset for one topic.
type topicOffsets map[int32]int64

// endOffsets lists the high watermarks (or, committed=true, the last stable
// offsets) of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string, committed bool) topicOffsets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	lo, err := list(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	out := topicOffsets{}
	for p, o := range lo[topic] {
		out[p] = o.Offset
	}
	return out
}

// groupOffsets returns the offsets group has committed for topic (partitions
// without a commit are absent). A missing group gives an empty map.
func groupOffsets(t *testing.T, adm *kadm.Client, group, topic string) topicOffsets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetching offsets of group %s: %v", group, err)
	}
	out := topicOffsets{}
	for p, o := range offs[topic] {
		if o.Err != nil {
			t.Fatalf("offset of group %s on %s[%d]: %v", group, topic, p, o.Err)
		}
		if o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// caughtUp reports whether group has committed topic up to targets
// (partition -> offset after the last data record: a transactional topic's
// high watermark is one further, past the final commit marker, and a
// consumer that commits "last settled + 1" never reaches it).
func caughtUp(t *testing.T, adm *kadm.Client, group, topic string, targets topicOffsets) bool {
	t.Helper()
	committed := groupOffsets(t, adm, group, topic)
	for p, target := range targets {
		if committed[p] < target {
			return false
		}
	}
	return true
}

// dataEnds returns, per partition, the offset after the last data record of
// recs.
func dataEnds(recs []*kgo.Record) topicOffsets {
	out := topicOffsets{}
	for _, r := range recs {
		out[r.Partition] = max(out[r.Partition], r.Offset+1)
	}
	return out
}

// readTopic reads every data record of topic up to its current end (the last
// stable offset for read_committed), skipping control records (transaction
// markers) and, for read_committed, aborted records. Open transactions on the
// topic must be over.
func readTopic(t *testing.T, c *kafkatest.Cluster, topic string, readCommitted bool) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(c.Client(t))
	ends := endOffsets(t, adm, topic, readCommitted)
	iso := kgo.ReadUncommitted()
	if readCommitted {
		iso = kgo.ReadCommitted()
	}
	cl := c.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
		// Markers are returned so the reader sees the very last offset of
		// every partition and knows it is done.
		kgo.KeepControlRecords(),
	)
	defer cl.Close()
	next := topicOffsets{} // partition -> next offset to read
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s (read_committed=%v): at %v, want %v", topic, readCommitted, next, ends)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if !r.Attrs.IsControl() && r.Offset < ends[r.Partition] {
				recs = append(recs, r)
			}
		})
	}
	return recs
}
