package deliverer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/pkg/clock"
	"github.com/hookstream/hookstream/pkg/codec"
	"github.com/hookstream/hookstream/pkg/registry"
	"github.com/hookstream/hookstream/pkg/webhook"
	"github.com/hookstream/hookstream/schemas"
)

const orderPaidJSON = `{"order_id":"ord_1","payment_id":"pay_1","amount":4747,"currency":"USD","method":"card","paid_at":"2026-11-23T18:21:07.000Z"}`

func testEnvelope(t testing.TB, cat *codec.Catalog) *codec.Envelope {
	t.Helper()
	data, err := cat.EncodeJSON("order.paid", []byte(orderPaidJSON))
	if err != nil {
		t.Fatal(err)
	}
	return &codec.Envelope{
		ID: "evt_01JD5R0K3N5P7Q9S1T3V5W7X9Z", Type: "order.paid", TenantID: "acme",
		OccurredAt: time.Date(2026, 11, 23, 18, 21, 7, 5_000_000, time.FixedZone("CET", 3600)),
		Data:       data,
	}
}

// jsonKeys returns the top-level keys of a JSON object in document order.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("body %s does not start an object: %v %v", b, tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestRender(t *testing.T) {
	d := newTestDeliverer(t, nil)
	env := testEnvelope(t, d.cat)
	body, err := d.render(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_01JD5R0K3N5P7Q9S1T3V5W7X9Z","type":"order.paid","timestamp":"2026-11-23T17:21:07.005Z","tenant_id":"acme","data":` +
		orderPaidJSON + `,"previous_data":null}`
	if string(body) != want {
		t.Errorf("render =\n%s\nwant\n%s", body, want)
	}
	if got := jsonKeys(t, body); strings.Join(got, ",") != "id,type,timestamp,tenant_id,data,previous_data" {
		t.Errorf("keys in order %v", got)
	}

	// previous_data, and identifiers that need escaping.
	env.PreviousData = env.Data
	env.ID = "evt_\"quoted\"\\\n"
	env.TenantID = "t\u2028<é>\x00"
	env.OccurredAt = time.UnixMilli(0)
	body, err = d.render(env)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID, Type, Timestamp string
		TenantID            string `json:"tenant_id"`
		Data                json.RawMessage
		PreviousData        json.RawMessage `json:"previous_data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("render produced invalid JSON %s: %v", body, err)
	}
	if got.ID != env.ID || got.TenantID != env.TenantID || got.Timestamp != "1970-01-01T00:00:00.000Z" ||
		string(got.Data) != orderPaidJSON || string(got.PreviousData) != orderPaidJSON {
		t.Errorf("render = %s", body)
	}
	if bytes.Contains(body, []byte("\u2028")) {
		t.Errorf("body has a raw U+2028: %q", body)
	}
}

func TestRenderBadData(t *testing.T) {
	d := newTestDeliverer(t, nil)
	env := testEnvelope(t, d.cat)
	good := env.Data
	for name, edit := range map[string]func(*codec.Envelope){
		"data not single object":  func(e *codec.Envelope) { e.Data = []byte("{}") },
		"data unknown schema":     func(e *codec.Envelope) { e.Data = append(codec.AppendHeader(nil, 42), good[codec.HeaderLen:]...) },
		"data truncated":          func(e *codec.Envelope) { e.Data = good[:len(good)-3] },
		"previous_data malformed": func(e *codec.Envelope) { e.PreviousData = []byte{0xc3, 0x01} },
	} {
		e := *env
		edit(&e)
		if b, err := d.render(&e); err == nil {
			t.Errorf("%s: render = %s, want an error", name, b)
		}
	}
}

// captureSender records requests and answers with a fixed result.
type captureSender struct {
	mu   sync.Mutex
	reqs []*Request
	res  Result
}

func (s *captureSender) Send(ctx context.Context, req *Request) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return Result{Err: errors.New("no attempt deadline")}
	}
	s.reqs = append(s.reqs, req)
	return s.res
}

func TestAttemptSignsPerStandardWebhooks(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sender := &captureSender{res: Result{Status: 204}}
	d := newTestDeliverer(t, func(c *Config) { c.Sender = sender; c.Clock = clock.NewFake(now) })
	oldSecret, _ := webhook.NewSecret()
	newSecret, _ := webhook.NewSecret()
	ep := &registry.Endpoint{ID: "ep_1", URL: "http://127.0.0.1:1/hooks", Secrets: []string{newSecret.String(), oldSecret.String()}, Status: registry.StatusActive}
	env := testEnvelope(t, d.cat)
	body, err := d.render(env)
	if err != nil {
		t.Fatal(err)
	}
	res := d.attempt(ep, env, body, 3)
	if res.Status != 204 || len(sender.reqs) != 1 {
		t.Fatalf("attempt = %+v with %d requests", res, len(sender.reqs))
	}
	req := sender.reqs[0]
	if req.URL != ep.URL || !bytes.Equal(req.Body, body) {
		t.Errorf("request to %s with body %s", req.URL, req.Body)
	}
	h := req.Header
	for k, want := range map[string]string{
		HeaderID: env.ID, HeaderTimestamp: strconv.FormatInt(now.Unix(), 10), HeaderEvent: "order.paid", HeaderAttempt: "3",
		"Content-Type": "application/json", "User-Agent": "Hookstream/" + Version,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Errorf("signature header %q has %d signatures, want one per secret (2)", h.Get(HeaderSignature), n)
	}
	// A receiver knowing either secret verifies the delivery.
	for _, s := range []webhook.Secret{newSecret, oldSecret} {
		v, err := webhook.NewVerifier([]webhook.Secret{s}, webhook.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(http.Header(h), body); err != nil {
			t.Errorf("Verify with one of the endpoint's secrets: %v", err)
		}
	}
	other, _ := webhook.NewSecret()
	v, _ := webhook.NewVerifier([]webhook.Secret{other}, webhook.WithClock(func() time.Time { return now }))
	if err := v.Verify(http.Header(h), body); err == nil {
		t.Error("a foreign secret verified the delivery")
	}

	// The signer is cached per endpoint version and dropped by forget.
	s1, err := d.sign.get(ep)
	if err != nil {
		t.Fatal(err)
	}
	if s2, _ := d.sign.get(ep); s2 != s1 {
		t.Error("signer not cached for the same endpoint version")
	}
	d.sign.forget(ep)
	if s3, _ := d.sign.get(ep); s3 == s1 {
		t.Error("forget did not drop the cached signer")
	}
}

func TestAttemptWithoutUsableSecret(t *testing.T) {
	sender := &captureSender{res: Result{Status: 200}}
	d := newTestDeliverer(t, func(c *Config) { c.Sender = sender })
	env := testEnvelope(t, d.cat)
	for name, secrets := range map[string][]string{"none": nil, "malformed": {"whsec_short"}} {
		ep := &registry.Endpoint{ID: "ep_" + name, URL: "http://127.0.0.1:1/", Secrets: secrets}
		res := d.attempt(ep, env, []byte("{}"), 1)
		if res.Err == nil || classify(res) != retryable {
			t.Errorf("%s secrets: attempt = %+v, want an error", name, res)
		}
	}
	if len(sender.reqs) != 0 {
		t.Errorf("%d unsigned requests were sent", len(sender.reqs))
	}
}

// The renderer's body is what receivers parse: a smoke check that a
// standard JSON decoder reads every field of every example event.
func TestRenderEveryExampleType(t *testing.T) {
	d := newTestDeliverer(t, nil)
	for _, typ := range d.cat.Types() {
		js, err := fs.ReadFile(schemas.FS, "events/"+typ+"/example.json")
		if err != nil {
			t.Fatal(err)
		}
		data, err := d.cat.EncodeJSON(typ, js)
		if err != nil {
			t.Fatalf("%s example: %v", typ, err)
		}
		body, err := d.render(&codec.Envelope{ID: "evt_1", Type: typ, TenantID: "t", OccurredAt: time.UnixMilli(1), Data: data})
		if err != nil {
			t.Fatalf("%s: render: %v", typ, err)
		}
		var v map[string]any
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil || v["type"] != typ {
			t.Errorf("%s: body %s: %v", typ, body, err)
		}
	}
}
