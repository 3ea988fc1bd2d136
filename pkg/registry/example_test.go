package registry_test

import (
	"fmt"

	"github.com/hookstream/hookstream/pkg/registry"
)

// An endpoint subscribes with patterns: an exact event type, a whole
// category ("payment.*") or everything ("*").
func ExampleMatchPattern() {
	for _, c := range []struct{ pattern, eventType string }{
		{"payment.succeeded", "payment.succeeded"},
		{"payment.*", "payment.refunded"},
		{"payment.*", "paymentx.refunded"},
		{"payment.*", "payment."},
		{"*", "order.created"},
	} {
		fmt.Printf("%-18s %-18s %v\n", c.pattern, c.eventType, registry.MatchPattern(c.pattern, c.eventType))
	}
	// Output:
	// payment.succeeded  payment.succeeded  true
	// payment.*          payment.refunded   true
	// payment.*          paymentx.refunded  false
	// payment.*          payment.           false
	// *                  order.created      true
}

func ExampleValidatePattern() {
	known := []string{"order.created", "payment.succeeded"}
	for _, p := range []string{"payment.*", "user.*", "pay*"} {
		fmt.Println(p, "→", registry.ValidatePattern(p, known))
	}
	// Output:
	// payment.* → <nil>
	// user.* → event_types: pattern "user.*" matches no known event type
	// pay* → event_types: pattern "pay*": '*' is only allowed alone or as a whole last segment (category.*)
}
