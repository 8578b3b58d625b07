# syntax=docker/dockerfile:1
#
# vmcp-normalizer container image: the release binary alone on a minimal,
# non-root runtime (distroless cc: glibc and libgcc, no shell, no package manager).
#
#   docker build -t vmcp-normalizer:0.1.0 .
#
# NOTE: the development machines and CI of this project have no Docker engine,
# so this file is not built there; it is kept correct by review. Build it where
# a BuildKit-capable engine exists (docker buildx, podman, kaniko, ...).
# For reproducible builds pin both base images by digest (FROM image@sha256:...).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io registry and target/ between builds; the
# binary is copied out of the cached target dir because mounts are not
# part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin vmcp-normalizer \
    && install -D -m 0755 target/release/vmcp-normalizer /out/vmcp-normalizer

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vmcp-normalizer /usr/local/bin/vmcp-normalizer
# 65532 is distroless' "nonroot"; the Helm chart runs the pod with the same uid/gid.
USER 65532:65532
# 8443: HTTPS admission endpoint (/mutate); 8080: plain-HTTP admin (/livez, /readyz, /metrics).
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/vmcp-normalizer"]
CMD ["serve"]
