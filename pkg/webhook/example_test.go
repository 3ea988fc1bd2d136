package webhook_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hookstream/hookstream/pkg/webhook"
)

func ExampleSign() {
	// The test vector published with the Standard Webhooks reference libraries.
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	sig := webhook.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(sig)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleSigner() {
	// During a rotation the sender signs with the old and the new secret.
	old, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	cur, _ := webhook.ParseSecret("whsec_dGhpcyBpcyB0aGUgbmV3IDMyLWJ5dGUgc2VjcmV0IGtleSE=")
	signer := webhook.NewSigner(old, cur)

	body := []byte(`{"type":"invoice.paid"}`)
	req, _ := http.NewRequest(http.MethodPost, "https://example.com/hooks", strings.NewReader(string(body)))
	signer.SetHeaders(req.Header, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Unix(1674087231, 0), body)
	for _, k := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		fmt.Printf("%s: %s\n", k, req.Header.Get(k))
	}
	// Output:
	// Webhook-Id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
	// Webhook-Timestamp: 1674087231
	// Webhook-Signature: v1,WcuvWu7eyo9z347nor+S+bQj636XMPsSqwii4TrJxPA= v1,PQZVSnlHB3kSQmkrczYofvUWZNY+btXlJpI/xqERSms=
}

func ExampleVerifier_Verify() {
	secret, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	v, err := webhook.NewVerifier([]webhook.Secret{secret})
	if err != nil {
		log.Fatal(err)
	}

	// What a sender would put on the request.
	body := []byte(`{"type":"invoice.paid"}`)
	h := http.Header{}
	webhook.NewSigner(secret).SetHeaders(h, "msg_1", time.Now(), body)

	fmt.Println(v.Verify(h, body))
	fmt.Println(v.Verify(h, []byte(`{"type":"invoice.void"}`)))
	// Output:
	// <nil>
	// webhook: no matching signature
}

func ExampleMiddleware() {
	secret, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	v, err := webhook.NewVerifier([]webhook.Secret{secret})
	if err != nil {
		log.Fatal(err)
	}
	store := webhook.NewMemoryStore()
	defer store.Close()

	handler := webhook.Middleware(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body) // verified body, exactly as signed
		fmt.Printf("processing %s (%s, attempt %d): %s\n", d.ID, d.EventType, d.Attempt, body)
		w.WriteHeader(http.StatusNoContent)
	}), webhook.WithStore(store))

	deliver := func(id string, sign bool) {
		body := `{"type":"invoice.paid"}`
		req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
		req.Header.Set("Webhook-Event", "invoice.paid")
		req.Header.Set("Webhook-Attempt", "1")
		if sign {
			webhook.NewSigner(secret).SetHeaders(req.Header, id, time.Now(), []byte(body))
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
	}
	deliver("msg_1", true)  // processed
	deliver("msg_1", true)  // the same message again: acknowledged, not processed
	deliver("msg_2", false) // unsigned: rejected
	// Output:
	// processing msg_1 (invoice.paid, attempt 1): {"type":"invoice.paid"}
	// 204
	// 200
	// 401 {"error":"webhook: missing required header: webhook-id","code":"missing_headers"}
}
