# The manager image that config/manager deploys (controller:latest, /manager, uid 65532).
# `make image` builds the same image without a container engine (docs/install.md); with one:
#   docker build -t <registry>/nomad-token-operator:<tag> .
#   cd config/manager && kustomize edit set image controller=<registry>/nomad-token-operator:<tag>
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /manager ./cmd/manager

# A static binary needs nothing but CA certificates (for NOMAD's TLS).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
