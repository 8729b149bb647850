# Container image for basip_exporter.
#
# Build:
#   docker build \
#     --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg BRANCH="$(git rev-parse --abbrev-ref HEAD)" \
#     --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     -t basip_exporter .
#
# Run (config and password file mounted read-only):
#   docker run --rm -p 9875:9875 \
#     -v "$PWD/config.yaml:/etc/basip_exporter/config.yaml:ro" \
#     -v "$PWD/password:/etc/basip_exporter/password:ro" \
#     basip_exporter
#
# Multi-platform builds (docker buildx --platform linux/amd64,linux/arm64)
# cross-compile in the build stage instead of emulating it.

############################
# Build stage
############################
FROM --platform=$BUILDPLATFORM golang:1.26 AS build

WORKDIR /src

# Dependencies first, so this layer is reused while only the sources change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .

ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=unknown

RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} \
        -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /basip_exporter .

############################
# Runtime stage
############################
# distroless/static ships CA certificates, tzdata and /etc/passwd entries for
# the unprivileged "nonroot" user (65532); there is no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
ARG BUILD_DATE=unknown

LABEL org.opencontainers.image.title="basip_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the SIP configuration of BAS-IP intercoms" \
      org.opencontainers.image.source="https://github.com/basip/basip_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY --from=build /basip_exporter /bin/basip_exporter

# Numeric so that Kubernetes' runAsNonRoot check can verify it.
USER 65532:65532

EXPOSE 9875

ENTRYPOINT ["/bin/basip_exporter"]
CMD ["--config.file=/etc/basip_exporter/config.yaml"]
