# syntax=docker/dockerfile:1
#
# presencehub container image.
#
#   docker build -t presencehub --build-arg VERSION=$(git describe --tags --always --dirty) .
#   docker run --rm -p 8080:8080 -v presencehub-data:/data presencehub          # embedded NATS
#   docker run --rm -p 8080:8080 -e PRESENCE_NATS_URL=nats://nats:4222 \
#     -e PRESENCE_JWT_SECRET=... presencehub                                     # external NATS
#
# Every flag of `presencehub serve` can be set as PRESENCE_<FLAG>; see
# docs/operations.md. The final image has no shell, so there is no Docker
# HEALTHCHECK: let the load balancer or orchestrator probe GET /readyz and
# GET /healthz on port 8080 (docker-compose.yml uses Caddy's active checks).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when
# go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" \
        -o /out/presencehub ./cmd/presencehub \
    && mkdir -p /out/data && chown 65532:65532 /out/data

# distroless static: CA certificates, tzdata and /etc/passwd with the
# nonroot user (65532), no shell, no package manager. The binary needs no
# libc (CGO_ENABLED=0) and carries its own time zone data.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/presencehub /presencehub
# /data must exist and belong to the nonroot user before the VOLUME line, so
# that a new volume mounted there starts with that ownership.
COPY --from=build --chown=65532:65532 /out/data /data

USER 65532:65532
ENV PRESENCE_DATA_DIR=/data
VOLUME /data

# 8080: HTTP and WebSocket (--addr). 4222: the embedded NATS server, only
# when --nats-listen is set (it has no authentication: publish it only on a
# private network).
EXPOSE 8080 4222

ENTRYPOINT ["/presencehub"]
CMD ["serve"]
