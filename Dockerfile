# spiffe-aws-bridge container image: the four release binaries, static, on a distroless non-root base. The
# entrypoint is spiffe-aws-bridge (no Kubernetes client); the Helm chart runs spiffe-aws-bridge-k8s, the
# build with pod identity and its admission webhook, through the container's command.
#
#   docker build -t spiffe-aws-bridge \
#     --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) .
#
# The binaries are built by scripts/build.sh, the same script CI uses for release archives.

FROM golang:1.26.8-bookworm AS build
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
# Dependencies first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN VERSION="${VERSION}" COMMIT="${COMMIT}" bash scripts/build.sh /out

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="spiffe-aws-bridge" \
      org.opencontainers.image.description="Temporary AWS credentials for SPIFFE workloads through IAM Roles Anywhere" \
      org.opencontainers.image.source="https://github.com/spiffe-aws-bridge/spiffe-aws-bridge" \
      org.opencontainers.image.url="https://github.com/spiffe-aws-bridge/spiffe-aws-bridge" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/spiffe-aws-bridge /out/spiffe-aws-bridge-k8s /out/spiffe-aws-credential-process /out/rolesanywhere-emulator /usr/local/bin/
# distroless "nonroot" is uid/gid 65532; the examples register the bridge's SPIFFE ID for unix:uid:65532.
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/spiffe-aws-bridge"]
CMD ["run", "--config", "/etc/spiffe-aws-bridge/bridge.hcl"]
