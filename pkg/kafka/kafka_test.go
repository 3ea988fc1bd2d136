package kafka_test

import (
	"context"
	"crypto/tls"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookstream/hookstream/pkg/kafka"
	"github.com/hookstream/hookstream/pkg/kafkatest"
)

func TestTopicNames(t *testing.T) {
	for _, tc := range []struct {
		prefix                         string
		events, invalid, endpoints     string
		endpoint, dlq, retry5m, retry1 string
	}{
		{"", "webhooks.events", "webhooks.events.invalid", "webhooks.endpoints",
			"webhooks.endpoint.ep_1", "webhooks.dlq", "webhooks.retry.5m", "webhooks.retry.1500ms"},
		{"acme-prod", "acme-prod.events", "acme-prod.events.invalid", "acme-prod.endpoints",
			"acme-prod.endpoint.ep_1", "acme-prod.dlq", "acme-prod.retry.5m", "acme-prod.retry.1500ms"},
	} {
		tp := kafka.Config{Prefix: tc.prefix}.Topics()
		for _, c := range []struct{ name, got, want string }{
			{"Events", tp.Events(), tc.events},
			{"Invalid", tp.Invalid(), tc.invalid},
			{"Endpoints", tp.Endpoints(), tc.endpoints},
			{"Endpoint", tp.Endpoint("ep_1"), tc.endpoint},
			{"DLQ", tp.DLQ(), tc.dlq},
			{"Retry(5m)", tp.Retry(5 * time.Minute), tc.retry5m},
			{"Retry(1.5s)", tp.Retry(1500 * time.Millisecond), tc.retry1},
		} {
			if c.got != c.want {
				t.Errorf("prefix %q: %s = %q, want %q", tc.prefix, c.name, c.got, c.want)
			}
		}
	}
	if p := (kafka.Config{}).Topics().Prefix; p != kafka.DefaultPrefix {
		t.Errorf("default prefix = %q, want %q", p, kafka.DefaultPrefix)
	}
}

func TestEndpointID(t *testing.T) {
	tp := kafka.Config{}.Topics()
	for _, tc := range []struct {
		topic string
		id    string
		ok    bool
	}{
		{"webhooks.endpoint.ep_01JD5R0K3N", "ep_01JD5R0K3N", true},
		{"webhooks.endpoint.a", "a", true},
		{tp.Endpoint("my-endpoint_2"), "my-endpoint_2", true},
		{"webhooks.endpoint.", "", false},
		{"webhooks.endpoints", "", false}, // the registry topic
		{"webhooks.events", "", false},
		{"webhooks.events.invalid", "", false},
		{"webhooks.dlq", "", false},
		{"webhooks.retry.5s", "", false}, // a retry tier is no endpoint
		{tp.Retry(30 * time.Minute), "", false},
		{"other.endpoint.ep_1", "", false}, // another prefix
		{"xwebhooks.endpoint.ep_1", "", false},
		{"", "", false},
	} {
		id, ok := tp.EndpointID(tc.topic)
		if id != tc.id || ok != tc.ok {
			t.Errorf("EndpointID(%q) = %q, %v; want %q, %v", tc.topic, id, ok, tc.id, tc.ok)
		}
	}
	// Every endpoint topic name parses back to its id.
	for _, id := range []string{"ep_1", "EP-2", "x"} {
		if got, ok := tp.EndpointID(tp.Endpoint(id)); !ok || got != id {
			t.Errorf("EndpointID(Endpoint(%q)) = %q, %v", id, got, ok)
		}
	}
}

func TestEndpointPattern(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod"} { // a dot in the prefix must be quoted
		tp := kafka.Config{Prefix: prefix}.Topics()
		re := regexp.MustCompile(tp.EndpointPattern())
		p := tp.Prefix
		match := []string{tp.Endpoint("ep_1"), tp.Endpoint("A-z_0-9"), tp.Endpoint("x")}
		noMatch := []string{
			tp.Events(), tp.Invalid(), tp.Endpoints(), tp.DLQ(), tp.Retry(5 * time.Second),
			p + ".endpoint.", p + ".endpoint.ep.1", p + ".endpoint.ep 1", p + ".endpoint.ep/1",
			p + ".endpoint.ep_1.extra", "x" + tp.Endpoint("ep_1"), tp.Endpoint("ep_1") + "\n",
			"other.endpoint.ep_1",
		}
		if prefix != "" {
			noMatch = append(noMatch, "acmexprod.endpoint.ep_1") // the dot is literal
		}
		for _, topic := range match {
			if !re.MatchString(topic) {
				t.Errorf("prefix %q: EndpointPattern %s does not match %q", prefix, re, topic)
			}
		}
		for _, topic := range noMatch {
			if re.MatchString(topic) {
				t.Errorf("prefix %q: EndpointPattern %s matches %q", prefix, re, topic)
			}
		}
	}
}

func TestRetryPattern(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod"} {
		tp := kafka.Config{Prefix: prefix}.Topics()
		re := regexp.MustCompile(tp.RetryPattern())
		p := tp.Prefix
		match := []string{}
		for _, d := range []time.Duration{5 * time.Second, 5 * time.Minute, 2 * time.Hour, 1500 * time.Millisecond, 24 * time.Hour} {
			match = append(match, tp.Retry(d))
		}
		noMatch := []string{
			tp.Events(), tp.Invalid(), tp.Endpoints(), tp.DLQ(), tp.Endpoint("ep_1"), tp.Endpoint("5s"),
			p + ".retry.", p + ".retry.5", p + ".retry.s", p + ".retry.5d", p + ".retry.5m0s",
			p + ".retry.1.5s", p + ".retry.-5s", p + ".retry.5s.x", "x" + tp.Retry(5*time.Second),
		}
		if prefix != "" {
			noMatch = append(noMatch, "acmexprod.retry.5s")
		}
		for _, topic := range match {
			if !re.MatchString(topic) {
				t.Errorf("prefix %q: RetryPattern %s does not match %q", prefix, re, topic)
			}
		}
		for _, topic := range noMatch {
			if re.MatchString(topic) {
				t.Errorf("prefix %q: RetryPattern %s matches %q", prefix, re, topic)
			}
		}
	}
}

func TestFormatDelay(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5s"},
		{30 * time.Second, "30s"},
		{60 * time.Second, "1m"},
		{90 * time.Second, "90s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "90m"},
		{2 * time.Hour, "2h"},
		{24 * time.Hour, "24h"},
		{36 * time.Hour, "36h"},
		{1500 * time.Millisecond, "1500ms"},
		{time.Millisecond, "1ms"},
		{time.Hour + time.Millisecond, "3600001ms"},
		{0, "0s"},
		{-5 * time.Second, "0s"},
	} {
		if got := kafka.FormatDelay(tc.d); got != tc.want {
			t.Errorf("FormatDelay(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		err  string // "" = valid
	}{
		{"minimal", kafka.Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{"several brokers", kafka.Config{Brokers: []string{"a:1", "b:2", "[::1]:9092"}}, ""},
		{"full", kafka.Config{Brokers: []string{"k:9092"}, Prefix: "acme.prod-1_x", ReplicationFactor: 3, MinInsyncReplicas: 2, TLS: &tls.Config{}}, ""},
		{"min isr with broker default rf", kafka.Config{Brokers: []string{"k:9092"}, ReplicationFactor: -1, MinInsyncReplicas: 2}, ""},
		{"min isr equal to rf", kafka.Config{Brokers: []string{"k:9092"}, ReplicationFactor: 3, MinInsyncReplicas: 3}, ""},

		{"no brokers", kafka.Config{}, "no brokers"},
		{"empty broker list", kafka.Config{Brokers: []string{}}, "no brokers"},
		{"broker without port", kafka.Config{Brokers: []string{"127.0.0.1:9092", "kafka"}}, `"kafka" is not host:port`},
		{"prefix with slash", kafka.Config{Brokers: []string{"k:9092"}, Prefix: "a/b"}, "prefix"},
		{"prefix with space", kafka.Config{Brokers: []string{"k:9092"}, Prefix: "a b"}, "prefix"},
		{"prefix too long", kafka.Config{Brokers: []string{"k:9092"}, Prefix: strings.Repeat("a", 201)}, "prefix"},
		{"negative min isr", kafka.Config{Brokers: []string{"k:9092"}, MinInsyncReplicas: -1}, "min in-sync replicas"},
		{"min isr above rf", kafka.Config{Brokers: []string{"k:9092"}, ReplicationFactor: 2, MinInsyncReplicas: 3}, "min in-sync replicas 3 does not fit replication factor 2"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tc.name, err)
		case tc.err != "" && err == nil:
			t.Errorf("%s: Validate() = nil, want an error about %q", tc.name, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: Validate() = %q, want it to mention %q", tc.name, err, tc.err)
		}
	}
}

func TestCoreTopics(t *testing.T) {
	specs := kafka.Config{Prefix: "p"}.CoreTopics()
	byName := map[string]kafka.TopicSpec{}
	for _, s := range specs {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("CoreTopics lists %s twice", s.Name)
		}
		byName[s.Name] = s
	}
	if len(specs) != 4 {
		t.Errorf("CoreTopics has %d topics, want 4 (events, invalid, endpoints, dlq)", len(specs))
	}
	if ev := byName["p.events"]; ev.Partitions != 6 || ev.Configs["cleanup.policy"] == "compact" {
		t.Errorf("events topic = %+v, want 6 partitions (the default), not compacted", ev)
	}
	if inv, ok := byName["p.events.invalid"]; !ok || inv.Partitions < 1 {
		t.Errorf("quarantine topic = %+v, %v", inv, ok)
	}
	reg := byName["p.endpoints"]
	if reg.Partitions != 1 {
		t.Errorf("registry topic has %d partitions; it must have 1 so one reader sees every change in order", reg.Partitions)
	}
	if reg.Configs["cleanup.policy"] != "compact" {
		t.Errorf("registry topic cleanup.policy = %q, want compact", reg.Configs["cleanup.policy"])
	}
	if reg.Configs["retention.ms"] != "" || strings.Contains(reg.Configs["cleanup.policy"], "delete") {
		t.Errorf("registry topic configs %v would let endpoints expire", reg.Configs)
	}
	dlq := byName["p.dlq"]
	if dlq.Partitions < 1 || dlq.Configs["retention.ms"] != "-1" {
		t.Errorf("dead-letter topic = %+v, want infinite retention", dlq)
	}
	if got := (kafka.Config{EventsPartitions: 12}).CoreTopics()[0]; got.Name != "webhooks.events" || got.Partitions != 12 {
		t.Errorf("CoreTopics with EventsPartitions 12: first = %+v, want webhooks.events with 12 partitions", got)
	}
	if got := (kafka.Config{EventsPartitions: -3}).CoreTopics()[0].Partitions; got != 6 {
		t.Errorf("CoreTopics with EventsPartitions -3: events has %d partitions, want the default 6", got)
	}
	// The caller may modify the returned configs without affecting the next call.
	specs[2].Configs["cleanup.policy"] = "delete"
	if got := (kafka.Config{Prefix: "p"}).CoreTopics()[2].Configs["cleanup.policy"]; got != "compact" {
		t.Errorf("CoreTopics shares its config maps between calls: got %q", got)
	}
}

func TestClientOptsClientID(t *testing.T) {
	for _, tc := range []struct {
		clientID, role, want string
	}{
		{"", "router", "hookstream-router"},
		{"", "", "hookstream"},
		{"acme", "deliverer", "acme-deliverer"},
		{"acme", "", "acme"},
	} {
		cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: tc.clientID}
		cl, err := kgo.NewClient(cfg.ClientOpts(tc.role)...) // does not dial
		if err != nil {
			t.Fatal(err)
		}
		got := cl.OptValue(kgo.ClientID)
		cl.Close()
		if got != tc.want {
			t.Errorf("ClientID %q, role %q: client id %v, want %q", tc.clientID, tc.role, got, tc.want)
		}
	}
	// Extra options come last and win.
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}, Opts: []kgo.Opt{kgo.ClientID("from-opts")}}
	cl, err := kgo.NewClient(cfg.ClientOpts("r", kgo.ClientID("from-extra"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.ClientID); got != "from-extra" {
		t.Errorf("client id with Opts and extra = %v, want from-extra", got)
	}
}

func TestEnsureTopics(t *testing.T) {
	c := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: c.Addrs, Prefix: "ens", ReplicationFactor: c.ReplicationFactor(), MinInsyncReplicas: 1}
	adm := c.Admin(t)
	// Twice: the second call finds every topic and leaves it as it is.
	for i := range 2 {
		if err := cfg.EnsureTopics(ctx, adm, cfg.CoreTopics()...); err != nil {
			t.Fatalf("EnsureTopics, call %d: %v", i+1, err)
		}
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.CoreTopics() {
		td, ok := details[s.Name]
		if !ok || len(td.Partitions) != int(s.Partitions) {
			t.Errorf("topic %s: %d partitions (exists %v), want %d", s.Name, len(td.Partitions), ok, s.Partitions)
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, cfg.Topics().Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(cfg.Topics().Endpoints(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["cleanup.policy"] != "compact" || got["min.insync.replicas"] != "1" {
		t.Errorf("registry topic configs: cleanup.policy=%q min.insync.replicas=%q, want compact and 1", got["cleanup.policy"], got["min.insync.replicas"])
	}

	// A topic that never appears: WaitTopics gives up with the context.
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if err := kafka.WaitTopics(short, adm, "ens.never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitTopics on a missing topic = %v, want context.DeadlineExceeded", err)
	}
}

// onNewClient is a kgo.HookNewClient that counts the clients it is installed on.
type onNewClient struct{ n int }

func (h *onNewClient) OnNewClient(*kgo.Client) { h.n++ }

func TestClientOptsHook(t *testing.T) {
	var ids []string
	h := &onNewClient{}
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "acme", Hook: func(id string) kgo.Hook {
		ids = append(ids, id)
		if id == "acme-nohook" {
			return nil
		}
		return h
	}}
	for _, role := range []string{"router", "nohook"} {
		cl, err := kgo.NewClient(cfg.ClientOpts(role)...)
		if err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	if !slices.Equal(ids, []string{"acme-router", "acme-nohook"}) {
		t.Errorf("Hook called with %v, want each client's id", ids)
	}
	if h.n != 1 {
		t.Errorf("the returned hook was installed on %d clients, want 1 (nil installs nothing)", h.n)
	}
}

// RecordBytes counts what franz-go counts against a batch's limit.
func TestRecordBytes(t *testing.T) {
	r := &kgo.Record{Key: []byte("k1"), Value: make([]byte, 100), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("xyz")}, {Key: "bb"}}}
	if n := kafka.RecordBytes(r); n != 2+100+1+3+2 {
		t.Errorf("RecordBytes = %d, want 108", n)
	}
	if n := kafka.RecordBytes(&kgo.Record{}); n != 0 {
		t.Errorf("RecordBytes of an empty record = %d", n)
	}
}

// FitBatchesToBrokers lowers the batch cap to the brokers' message.max.bytes
// only when that is the smaller, and ClientOpts applies it.
func TestFitBatchesToBrokers(t *testing.T) {
	c := kafkatest.Start(t)
	cfg := kafka.Config{Brokers: c.Addrs}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adm := c.Admin(t)
	set := func(v string) {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "message.max.bytes", Value: kadm.StringPtr(v)}})
		if err == nil {
			err = rs[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		broker      string
		preset, got int32
	}{
		{"2000000", 0, 0},             // above franz-go's default: left alone
		{"2000000", 500_000, 500_000}, // a cap already lower is kept
		{"30000", 0, 30000},
		{"30000", 500_000, 30000},
	} {
		set(tc.broker)
		cfg.MaxBatchBytes = tc.preset
		// Real Kafka applies a dynamic broker config a moment later.
		fitted, err := cfg.FitBatchesToBrokers(ctx, adm)
		for err == nil && fitted.MaxBatchBytes != tc.got && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			fitted, err = cfg.FitBatchesToBrokers(ctx, adm)
		}
		if err != nil || fitted.MaxBatchBytes != tc.got {
			t.Errorf("brokers at %s, preset %d: MaxBatchBytes %d, %v; want %d", tc.broker, tc.preset, fitted.MaxBatchBytes, err, tc.got)
		}
	}
	// The cap reaches the client: a batch over it is refused before it is sent.
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kafka.Config{Brokers: c.Addrs, MaxBatchBytes: 1000}.ClientOpts("t")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: make([]byte, 2000)}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("producing 2,000 bytes with MaxBatchBytes 1000: %v, want MESSAGE_TOO_LARGE", err)
	}
}
