package deliverer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/kafka"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false,
		"100.64.0.1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "224.0.0.1": false,
		"255.255.255.255": false, "198.18.0.1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestSenderRefusesPrivateTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := NewHTTPSender(1, false).Send(ctx, &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")})
	if !errors.Is(res.Err, ErrPrivateTarget) {
		t.Fatalf("delivery to %s: %+v, want ErrPrivateTarget", srv.URL, res)
	}
	res = NewHTTPSender(1, true).Send(ctx, &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")})
	if res.Err != nil || res.Status != 204 {
		t.Fatalf("with private targets allowed: %+v", res)
	}
	res = NewFastSender(1, false).Send(ctx, &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")})
	if !errors.Is(res.Err, ErrPrivateTarget) {
		t.Fatalf("fasthttp delivery to %s: %+v, want ErrPrivateTarget", srv.URL, res)
	}
	res = NewFastSender(1, true).Send(ctx, &Request{URL: srv.URL, Header: http.Header{}, Body: []byte("{}")})
	if res.Err != nil || res.Status != 204 {
		t.Fatalf("fasthttp with private targets allowed: %+v", res)
	}
}

func TestNewChecksHTTPClient(t *testing.T) {
	for name, ok := range map[string]bool{"": true, HTTPClientFast: true, HTTPClientNetHTTP: true, "curl": false} {
		_, err := New(Config{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, HTTPClient: name}, nil, testCatalog(t))
		if (err == nil) != ok {
			t.Errorf("HTTPClient %q: New error %v, want ok=%v", name, err, ok)
		}
	}
}
