package main

import (
	"bytes"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/pkg/webhook"
)

// receivers are the customer endpoints: a few HTTP listeners (hosts), each
// serving many endpoints by path /ep/<id>. Every request's signature is
// verified with its endpoint's secret, like a real receiver would.
type receivers struct {
	srvs  []*http.Server
	hosts []string

	mu        sync.RWMutex
	verifiers map[string]*webhook.Verifier // endpoint id -> verifier

	delivered atomic.Int64
	badSig    atomic.Int64
	first     atomic.Int64 // unix nanos of the first delivery since reset
	lat       *histogram   // end-to-end latency, when recording
	recording atomic.Bool
	marks     marks // delivery count over time
}

func newReceivers(n int) (*receivers, error) {
	r := &receivers{verifiers: map[string]*webhook.Verifier{}, lat: newHistogram()}
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.close()
			return nil, err
		}
		srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		r.srvs = append(r.srvs, srv)
		r.hosts = append(r.hosts, "http://"+ln.Addr().String())
	}
	return r, nil
}

func (r *receivers) close() {
	for _, s := range r.srvs {
		_ = s.Close()
	}
}

// url is the URL of endpoint number i with id id.
func (r *receivers) url(i int, id string) string {
	return r.hosts[i%len(r.hosts)] + "/ep/" + id
}

func (r *receivers) trust(id string, secrets []string) error {
	var ss []webhook.Secret
	for _, s := range secrets {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			return err
		}
		ss = append(ss, sec)
	}
	v, err := webhook.NewVerifier(ss)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.verifiers[id] = v
	r.mu.Unlock()
	return nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *receivers) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := strings.TrimPrefix(req.URL.Path, "/ep/")
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(req.Body, 1<<20)); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	body := buf.Bytes()
	r.mu.RLock()
	v := r.verifiers[id]
	r.mu.RUnlock()
	if v == nil || v.Verify(req.Header, body) != nil {
		r.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	now := time.Now()
	n := r.delivered.Add(1)
	if n == 1 || r.first.Load() == 0 {
		r.first.CompareAndSwap(0, now.UnixNano())
	}
	if r.recording.Load() {
		if ts, ok := bodyTimestamp(body); ok {
			r.lat.record(now.Sub(ts))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// bodyTimestamp reads the "timestamp" field (the event's occurred_at) from
// the start of a delivery body without parsing the whole JSON.
func bodyTimestamp(body []byte) (time.Time, bool) {
	const key = `"timestamp":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 || len(body) < i+len(key)+24 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15:04:05.000Z07:00", string(body[i+len(key):i+len(key)+24]))
	return t, err == nil
}

// marks samples the delivered count over time to find the steady state.
type marks struct {
	mu sync.Mutex
	t  []time.Time
	n  []int64
}

func (m *marks) add(t time.Time, n int64) {
	m.mu.Lock()
	m.t, m.n = append(m.t, t), append(m.n, n)
	m.mu.Unlock()
}

// steadyRate is the delivery rate between the samples where 10 % and 90 %
// of total were delivered: ramp-up and the tail are left out.
func (m *marks) steadyRate(total int64) float64 { return m.steadyRateFrom(0, total) }

// steadyRateFrom is steadyRate for the deliveries from base (exclusive) to
// total: a later batch of a stage that has already delivered base.
func (m *marks) steadyRateFrom(base, total int64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	span := total - base
	lo, hi := -1, -1
	for i, n := range m.n {
		if lo < 0 && n >= base+span/10 {
			lo = i
		}
		if hi < 0 && n >= base+span*9/10 {
			hi = i
		}
	}
	if lo < 0 || hi <= lo {
		return 0
	}
	return float64(m.n[hi]-m.n[lo]) / m.t[hi].Sub(m.t[lo]).Seconds()
}

// histogram is a lock-free log-linear latency histogram (1 µs .. ~70 s,
// about 2 % resolution).
type histogram struct{ b [2048]atomic.Int64 }

func newHistogram() *histogram { return &histogram{} }

const histBase = 1.02

func (h *histogram) record(d time.Duration) {
	us := float64(d.Microseconds())
	if us < 1 {
		us = 1
	}
	i := int(math.Log(us) / math.Log(histBase))
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i].Add(1)
}

func (h *histogram) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
}

// quantiles returns the given quantiles in milliseconds and the count.
func (h *histogram) quantiles(qs ...float64) ([]float64, int64) {
	var counts [len(histogram{}.b)]int64
	var total int64
	for i := range h.b {
		counts[i] = h.b[i].Load()
		total += counts[i]
	}
	out := make([]float64, len(qs))
	if total == 0 {
		return out, 0
	}
	for k, q := range qs {
		want := int64(math.Ceil(q * float64(total)))
		var seen int64
		for i, c := range counts {
			seen += c
			if seen >= want {
				out[k] = math.Pow(histBase, float64(i+1)) / 1000
				break
			}
		}
	}
	return out, total
}
