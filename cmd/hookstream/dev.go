package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/deliverer"
	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
	"github.com/hookstream/hookstream/producer"
	"github.com/hookstream/hookstream/router"
	"github.com/hookstream/hookstream/schemas"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("dev", "Run the whole pipeline in one process on an embedded Kafka (kfake) that persists to --data-dir,\nwith a demo receiver that verifies every delivery, a sample endpoint, and a trickle of sample events.", stderr)
	var (
		dataDir, kafkaAddr, receiverAddr, metricsAddr, tenant, prefix string
		interval                                                      time.Duration
		syncWrites                                                    bool
		lf                                                            logFlags
		df                                                            delivererFlags
	)
	f.str(&dataDir, "data-dir", ".data/kfake", "where the embedded broker keeps its data")
	f.str(&kafkaAddr, "kafka-addr", "127.0.0.1:9092", "listen address of the embedded broker (other commands can use it with --brokers)")
	f.boolean(&syncWrites, "sync-writes", false, "fsync every produce on the embedded broker")
	f.str(&receiverAddr, "receiver-addr", "127.0.0.1:8081", "listen address of the demo receiver")
	f.str(&metricsAddr, "metrics-addr", "127.0.0.1:9464", "listen address of /metrics and /healthz (empty = off)")
	f.str(&tenant, "tenant", "demo", "tenant of the sample endpoint and events")
	f.str(&prefix, "topic-prefix", kafka.DefaultPrefix, "prefix of every topic name")
	f.duration(&interval, "interval", time.Second, "time between sample events (0 = no sample events)")
	lf.register(f)
	df.register(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if err := df.validate(); err != nil { // before starting anything
		fmt.Fprintf(stderr, "hookstream dev: %v\n", err)
		return errUsage
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	_, portStr, err := net.SplitHostPort(kafkaAddr)
	if err != nil {
		return fmt.Errorf("--kafka-addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--kafka-addr: bad port %q", portStr)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	kopts := []kfake.Opt{kfake.Ports(port), kfake.DataDir(dataDir)}
	if syncWrites {
		kopts = append(kopts, kfake.SyncWrites())
	}
	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		return fmt.Errorf("embedded broker on %s: %w", kafkaAddr, err)
	}
	defer cluster.Close()
	kcfg := kafka.Config{Brokers: cluster.ListenAddrs(), Prefix: prefix, ClientID: "hookstream-dev"}
	promReg := instrument(&kcfg)

	st, err := openStack(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	// The sample endpoint, created once and reused from the data dir after.
	url := "http://" + receiverAddr + "/webhooks"
	var ep *registry.Endpoint
	for _, e := range st.reg.List(tenant) {
		if e.URL == url && e.Status != registry.StatusDeleted {
			ep = e
		}
	}
	acl, err := kgo.NewClient(kcfg.ClientOpts("dev-admin")...)
	if err != nil {
		return err
	}
	defer acl.Close()
	if ep == nil {
		ep, err = registry.NewAdmin(kcfg, acl, st.cat, st.reg).Create(ctx, registry.Endpoint{
			TenantID: tenant, URL: url, EventTypes: []string{"*"}, Description: "hookstream dev demo receiver",
		})
		if err != nil {
			return err
		}
	}

	// The demo receiver verifies every delivery with the endpoint's secrets.
	var secrets []webhook.Secret
	for _, s := range ep.Secrets {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			return err
		}
		secrets = append(secrets, sec)
	}
	recvLn, err := net.Listen("tcp", receiverAddr)
	if err != nil {
		return fmt.Errorf("--receiver-addr: %w", err)
	}
	store := webhook.NewMemoryStore()
	defer store.Close()
	verifier, err := webhook.NewVerifier(secrets)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", webhook.Middleware(verifier, demoHandler(log), webhook.WithStore(store)))
	recvSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = recvSrv.Serve(recvLn) }()
	defer recvSrv.Close()

	closeLag, err := exportLag(kcfg, promReg, router.DefaultGroup, deliverer.DefaultGroup)
	if err != nil {
		return err
	}
	defer closeLag()
	if err := serveMetrics(ctx, metricsAddr, promReg, log, false); err != nil {
		return err
	}
	rt, err := router.New(router.Config{Kafka: kcfg, TransactionalID: "hookstream-dev-router", Logger: log, Registerer: promReg}, st.reg, st.cat)
	if err != nil {
		return err
	}
	df.allowPrivate = true // the demo receiver is on loopback
	dcfg, err := df.config(kcfg, log, promReg)
	if err != nil {
		return err
	}
	dl, err := deliverer.New(dcfg, st.reg, st.cat)
	if err != nil {
		return err
	}
	prod, err := producer.New(producer.WithKafkaConfig(kcfg), producer.WithCatalog(st.cat))
	if err != nil {
		return err
	}
	defer prod.Close()

	fmt.Fprintf(stdout, `
Hookstream dev stack is running.

  embedded Kafka   %s   (data in %s)
  demo receiver    %s   (verifies signatures, logs each delivery)
  sample endpoint  %s   tenant %q, subscribed to *
  signing secret   %s
  metrics          http://%s/metrics

Try:  go run ./cmd/hookstream emit --brokers %s --tenant %s --type payment.succeeded --data @schemas/events/payment.succeeded/example.json
Stop with Ctrl-C.

`, kafkaAddr, dataDir, url, ep.ID, tenant, ep.Secrets[0], metricsAddr, kafkaAddr, tenant)

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, svc := range []func(context.Context) error{rt.Run, dl.Run, func(ctx context.Context) error {
		return trickle(ctx, prod, st.cat.Types(), tenant, interval, log)
	}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc(runCtx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func demoHandler(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		var body struct {
			Type     string          `json:"type"`
			TenantID string          `json:"tenant_id"`
			Data     json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":"body is not JSON"}`, http.StatusBadRequest)
			return
		}
		log.Info("receiver: verified delivery", "webhook_id", d.ID, "type", body.Type, "attempt", d.Attempt, "tenant", body.TenantID, "data_bytes", len(body.Data))
		w.WriteHeader(http.StatusNoContent)
	})
}

// trickle publishes a random sample event (schemas/events/<type>/example.json)
// every interval.
func trickle(ctx context.Context, p *producer.Producer, types []string, tenant string, interval time.Duration, log *slog.Logger) error {
	if interval <= 0 {
		return nil
	}
	samples := map[string][]byte{}
	for _, t := range types {
		b, err := fs.ReadFile(schemas.FS, "events/"+t+"/example.json")
		if err == nil {
			samples[t] = b
		}
	}
	if len(samples) == 0 {
		return errors.New("no example.json samples in schemas/events")
	}
	var names []string
	for t := range samples {
		names = append(names, t)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		t := names[rand.IntN(len(names))]
		id, err := p.Publish(ctx, producer.Event{Type: t, TenantID: tenant, Data: json.RawMessage(samples[t])})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("dev: publishing sample event", "type", t, "err", err)
			continue
		}
		log.Debug("dev: published sample event", "type", t, "id", id)
	}
}
