# Hookstream — `make run` starts the dev stack, `make test` proves the path
# on the embedded broker and on real Apache Kafka.

GO          ?= go
BIN         := bin/hookstream
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
# The real-Kafka suite: the e2e scenarios and the broker helper's own tests.
KAFKA_PKGS  := ./e2e/... ./pkg/kafkatest/... ./pkg/ops/... ./pkg/registry/... ./router/... ./cmd/hookstream/...

.PHONY: all build run test vet lint unit e2e-kfake e2e-kafka kafka-fetch bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/hookstream

## run: the whole pipeline on an embedded broker (data in .data/), a demo receiver, sample events.
run:
	$(GO) run ./cmd/hookstream dev

## test: vet, lint, unit tests with -race, the e2e suite on kfake, then on real Kafka.
test: vet lint unit e2e-kafka

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	python3 docs/gen-config.py --check

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

## unit: every package with -race; the e2e suite runs here on kfake.
unit:
	HOOKSTREAM_TEST_BROKER=kfake $(GO) test -race -count=1 -timeout 20m ./...

e2e-kfake:
	HOOKSTREAM_TEST_BROKER=kfake $(GO) test -race -count=1 -timeout 20m -v ./e2e/...

## e2e-kafka: the same suite on real Apache Kafka started by scripts/kafka.sh (fails, never skips, if it cannot start).
e2e-kafka: kafka-fetch
	HOOKSTREAM_TEST_BROKER=kafka $(GO) test -race -count=1 -timeout 40m -v $(KAFKA_PKGS)

## kafka-fetch: resolve Apache Kafka from Maven Central into the cache (idempotent).
kafka-fetch:
	scripts/kafka.sh fetch

## bench: the end-to-end benchmark on real Kafka and on kfake (about 5 minutes); prints the table, writes bench/results/latest.json.
BENCH_ARGS ?=
bench: kafka-fetch
	$(GO) run ./bench/hsbench $(BENCH_ARGS)

## fuzz: run every fuzz target for FUZZTIME each.
FUZZTIME ?= 15s
FUZZ_TARGETS := ./pkg/webhook:FuzzVerify ./pkg/webhook:FuzzParseSecret ./pkg/codec:FuzzDecodeEnvelope \
	./pkg/codec:FuzzDataToJSON ./pkg/codec:FuzzEncodeJSON ./pkg/codec:FuzzAppendJSONString ./producer:FuzzRecord \
	./deliverer:FuzzParseRetryAfter
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

clean:
	rm -rf bin .data
