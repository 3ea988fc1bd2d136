package deliverer

import (
	"context"
	"log/slog"
	"testing"

	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/kafka"
)

// newTestDeliverer returns a Deliverer built by New with a minimal config
// (edited by edit, if given) and no registry. New does not dial; the broker
// address is unroutable anyway. Its soft and hard contexts, which Run would
// set, end when the test does.
func newTestDeliverer(t testing.TB, edit func(*Config)) *Deliverer {
	t.Helper()
	cfg := Config{
		Kafka:  kafka.Config{Brokers: []string{"127.0.0.1:1"}},
		Logger: slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg, nil, testCatalog(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	t.Cleanup(d.setContexts(ctx, ctx))
	return d
}

func testCatalog(t testing.TB) *codec.Catalog {
	t.Helper()
	cat, err := codec.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}
