package deliverer

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
)

// BenchmarkAttempt is one signed attempt on the default Sender (fasthttp)
// against a loopback fasthttp server answering 204: the deliverer's
// per-attempt work (headers, signature, the attempt's deadline and
// cancellation, the request) plus the cheapest server there is. Both ends
// run in this process, so ns/op and allocs/op count the server's share too.
//
//	go test -run '^$' -bench Attempt -benchmem ./deliverer/
func BenchmarkAttempt(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) { c.SetStatusCode(fasthttp.StatusNoContent) }}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()

	d := newTestDeliverer(b, func(c *Config) { c.AllowPrivateTargets = true })
	secret, err := webhook.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	ep := &registry.Endpoint{ID: "ep_1", URL: "http://" + ln.Addr().String() + "/hooks", Secrets: []string{secret.String()}, Status: registry.StatusActive}
	env := testEnvelope(b, d.cat)
	body, err := d.render(env)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16) // many attempts in flight, as the deliverer runs them
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := d.attempt(ep, env, body, 1); res.Status != fasthttp.StatusNoContent {
				b.Errorf("attempt = %+v", res)
				return
			}
		}
	})
}
