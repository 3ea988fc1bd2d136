package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/webhook"
)

func TestReceiver(t *testing.T) {
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, secret, logger) }()

	url := "http://" + ln.Addr().String() + "/hooks"
	post := func(id, body string, sign bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if sign {
			webhook.NewSigner(secret).SetHeaders(req.Header, id, time.Now(), []byte(body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	event := `{"id":"evt_1","type":"payment.succeeded","timestamp":"2026-01-02T03:04:05Z","tenant_id":"t_1","data":{"amount":1999},"previous_data":null}`
	for _, tc := range []struct {
		name, id, body string
		sign           bool
		want           int
	}{
		{"event", "msg_1", event, true, http.StatusNoContent},
		{"duplicate", "msg_1", event, true, http.StatusOK},
		{"unsigned", "msg_2", event, false, http.StatusUnauthorized},
		{"bad JSON", "msg_3", "{", true, http.StatusBadRequest},
		{"bad JSON retried", "msg_3", "{", true, http.StatusBadRequest}, // not marked seen
	} {
		if got := post(tc.id, tc.body, tc.sign); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, want := range []string{`msg="event received"`, "event_id=evt_1", "type=payment.succeeded", "tenant_id=t_1", `msg="webhook rejected"`, `msg="duplicate delivery acknowledged" webhook_id=msg_1`, "shutting down"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}
