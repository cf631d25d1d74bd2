# syntax=docker/dockerfile:1
# afk: the afk-poll and afk-watch CronJob binaries in one small image.
#
# Runtime base: a slim Debian, not distroless. afk-poll runs the real `git` (clone and fetch over
# HTTPS, checkout) and afk-watch runs `git gc` in the mirrors, and git needs its helpers
# (git-remote-https), libcurl, zlib, pcre2 and CA certificates; copying that closure into a
# distroless image by hand is fragile, so the runtime installs git from Debian instead. No shell
# is ever invoked by afk (git runs with an argument vector), the image runs as a non-root user,
# and the Kubernetes manifests (deploy/) add a read-only root filesystem and drop every
# capability. The builder and runtime share one Debian release so the binaries' glibc matches.

ARG RUST_IMAGE=rust:1.95.0-slim-trixie
ARG RUNTIME_IMAGE=debian:trixie-20260406-slim

FROM ${RUST_IMAGE} AS build
# The commit `--version` reports (the build context holds no .git):
# docker buildx build --build-arg AFK_COMMIT="$(git rev-parse HEAD)" ...
ARG AFK_COMMIT=unknown
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    AFK_COMMIT="${AFK_COMMIT}" cargo build --release --locked -p afk --bins \
    && mkdir -p /out \
    && cp target/release/afk-poll target/release/afk-watch /out/

FROM ${RUNTIME_IMAGE} AS runtime
# Versions follow the pinned base image's Debian release; its security updates are wanted.
# No safe.directory: afk runs git only in the repos' mirrors and in run clones it is still
# building, all owned by its own uid, and it reads no system or global git config anyway
# (docs/operations.md, "Workspace isolation").
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 afk \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin afk
COPY --from=build /out/afk-poll /out/afk-watch /usr/local/bin/
ENV HOME=/tmp \
    AFK_CONFIG=/etc/afk/config.toml
USER 65532:65532
WORKDIR /tmp
# Each CronJob picks its binary with `command`; afk-poll is the default.
ENTRYPOINT ["/usr/local/bin/afk-poll"]
