// Command receiver is a small webhook endpoint built on pkg/webhook. It shows
// the whole receiving side: Standard Webhooks signature verification,
// de-duplication by webhook-id, decoding the Hookstream event payload, and a
// graceful shutdown.
//
//	WEBHOOK_SECRET=whsec_... go run ./examples/receiver --addr 127.0.0.1:8081
//
// It accepts POST on any path and answers 204 once an event is processed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hookstream/hookstream/pkg/webhook"
)

// Event is the JSON body Hookstream delivers.
type Event struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Timestamp    time.Time       `json:"timestamp"`
	TenantID     string          `json:"tenant_id"`
	Data         json.RawMessage `json:"data"`
	PreviousData json.RawMessage `json:"previous_data,omitempty"` // *.updated events only
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "endpoint signing secret, whsec_... (default $WEBHOOK_SECRET)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	if err := run(*addr, *secret, logger); err != nil {
		logger.Error("receiver stopped", "err", err)
		os.Exit(1)
	}
}

func run(addr, secretText string, logger *slog.Logger) error {
	if secretText == "" {
		return errors.New("no secret: pass --secret or set WEBHOOK_SECRET")
	}
	secret, err := webhook.ParseSecret(strings.TrimSpace(secretText))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, ln, secret, logger)
}

// serve answers webhooks on ln until ctx is done, then shuts down gracefully:
// it stops accepting and lets requests in flight finish.
func serve(ctx context.Context, ln net.Listener, secret webhook.Secret, logger *slog.Logger) error {
	handler, store, err := newHandler(secret, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// newHandler wires the verifying, de-duplicating middleware around the event
// handler. The store must be closed after use.
func newHandler(secret webhook.Secret, logger *slog.Logger) (http.Handler, *webhook.MemoryStore, error) {
	verifier, err := webhook.NewVerifier([]webhook.Secret{secret})
	if err != nil {
		return nil, nil, err
	}
	store := webhook.NewMemoryStore()
	logRejection := func(w http.ResponseWriter, r *http.Request, status int, err error) {
		logger.Warn("webhook rejected", "status", status, "err", err, "remote", r.RemoteAddr)
		webhook.DefaultErrorHandler(w, r, status, err)
	}
	// A delivery already processed is acknowledged again without reprocessing.
	logDuplicate := func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		logger.Info("duplicate delivery acknowledged", "webhook_id", d.ID, "attempt", d.Attempt)
		w.WriteHeader(http.StatusOK)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /", webhook.Middleware(verifier, handleEvent(logger),
		webhook.WithStore(store),
		webhook.WithErrorHandler(logRejection),
		webhook.WithDuplicateHandler(http.HandlerFunc(logDuplicate)),
	))
	return mux, store, nil
}

// handleEvent runs only for verified deliveries seen for the first time.
func handleEvent(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		var ev Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			// Not 2xx, so the middleware keeps the id free for a retry.
			logger.Warn("undecodable event", "webhook_id", d.ID, "err", err)
			http.Error(w, fmt.Sprintf("invalid event JSON: %v", err), http.StatusBadRequest)
			return
		}
		logger.Info("event received",
			"webhook_id", d.ID,
			"attempt", d.Attempt,
			"event_id", ev.ID,
			"type", ev.Type,
			"tenant_id", ev.TenantID,
			"occurred_at", ev.Timestamp,
			"data", string(ev.Data),
			"has_previous_data", len(ev.PreviousData) > 0 && string(ev.PreviousData) != "null",
		)
		w.WriteHeader(http.StatusNoContent)
	})
}
