# syntax=docker/dockerfile:1
#
# Hookstream images: one static binary on distroless, running as non-root.
#
#   docker build -t hookstream .                              # /hookstream (default target)
#   docker build --target receiver -t hookstream-receiver .   # /receiver, from examples/receiver
#
#   docker run --rm hookstream router --brokers kafka-1:9092 --metrics-addr 0.0.0.0:9464
#
# GO_VERSION must satisfy the go line of go.mod (1.26.8); the golang images
# set GOTOOLCHAIN=local, so an older toolchain fails instead of downloading.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/hookstream ./cmd/hookstream && \
    go build -trimpath -ldflags='-s -w' -o /out/receiver ./examples/receiver

# The example webhook receiver: needs WEBHOOK_SECRET (or --secret) and
# --addr 0.0.0.0:8081 to be reachable from other containers.
FROM gcr.io/distroless/static-debian12:nonroot AS receiver
COPY --from=build /out/receiver /receiver
EXPOSE 8081
ENTRYPOINT ["/receiver"]

# The default target: router, deliverer, emit, endpoints, dlq, replay (and dev).
# Metrics: the router defaults to 9464, the deliverer to 9465; both listen on
# 127.0.0.1 unless --metrics-addr / HOOKSTREAM_METRICS_ADDR says otherwise.
# The deliverer refuses private target addresses unless
# --allow-private-targets / HOOKSTREAM_ALLOW_PRIVATE_TARGETS=true is set.
FROM gcr.io/distroless/static-debian12:nonroot AS hookstream
COPY --from=build /out/hookstream /hookstream
EXPOSE 9464 9465
ENTRYPOINT ["/hookstream"]
