# vmcp-normalizer container image: one static binary on an empty base (no
# shell, no package manager, no libc), run as uid/gid 65532.
#
# The binary is compiled outside the image build, by the same cargo command on
# a developer's machine, in CI and in the release workflow
# (scripts/build-binary.sh: a static musl build, checked to have no dynamic
# dependencies). The image build then only copies files: it needs no network,
# no base image to pull and no compiler, so buildah builds it without a daemon
# and every builder produces the same layer from the same binary.
#
# Build it the way CI does (buildah, writes target/image/vmcp-normalizer-<version>.oci.tar):
#   scripts/build-image.sh
# or with Docker, from the same file:
#   scripts/build-binary.sh
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#       -t ghcr.io/vmcp-normalizer/vmcp-normalizer:0.1.0 .
# (docker buildx build --platform linux/amd64,linux/arm64 works too once
# scripts/build-binary.sh has run on each architecture.)

FROM scratch

# Set by Docker BuildKit and buildah for the platform being built (amd64, arm64).
ARG TARGETARCH
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/vmcp-normalizer/vmcp-normalizer
ARG CREATED=1970-01-01T00:00:00Z

LABEL org.opencontainers.image.title="vmcp-normalizer" \
      org.opencontainers.image.description="Mutating admission webhook that puts ToolHive vMCP backend sets in canonical order" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# Owned by root, mode 0755 (set when staged): the server's user can run it, not change it.
COPY target/image/linux-${TARGETARCH}/vmcp-normalizer /usr/local/bin/vmcp-normalizer

# 65532 is the conventional "nonroot" id; the Helm chart runs the pod as the same uid/gid.
USER 65532:65532
# 8443: HTTPS admission endpoint (/mutate); 8080: plain-HTTP admin (/livez, /readyz, /metrics).
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/vmcp-normalizer"]
CMD ["--help"]
