# syntax=docker/dockerfile:1
# The image2model reference app (crates/image2model), for docker-compose.yml.
#
#   docker build -t image2model .        (or: docker compose build image2model)
#
# Stage 1 builds the release binary with the same toolchain the project is tested with (rustc 1.95.0;
# the workspace needs rust-version 1.88 and edition 2024). BuildKit cache mounts keep the cargo registry
# and the target directory between builds, so a code change recompiles our crates only, not every
# dependency. Stage 2 is Debian slim of the same release as the builder (trixie = 13: same glibc), with
# the binary, CA certificates (image2model refuses to start without a CA store: TLS providers and OTLP
# endpoints), curl for the HEALTHCHECK, and a non-root user. tests/tests/compose/dockerfile.rs checks these rules.

FROM rust:1.95.0-slim-trixie AS builder
WORKDIR /src
# The whole workspace is needed to resolve it (members = crates/*, tests); .dockerignore keeps target
# directories, .git, data and logs out of the build context.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release -p image2model --locked \
    && install -D -m 0755 target/release/image2model /out/image2model

FROM debian:13.4-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 image2model \
    && useradd --system --uid 10001 --gid image2model --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin image2model \
    && mkdir -p /data /var/log/image2model \
    && chown image2model:image2model /data /var/log/image2model
COPY --from=builder /out/image2model /usr/local/bin/image2model
# Listen on every interface of the container (the binary's default is loopback only); the admin
# /metrics listener likewise, for Prometheus. Beyond loopback it needs TELEMETRY_ADMIN_TOKEN or the
# explicit opt-in below: port 9464 is meant for the container network only, never published.
# Data and log files under directories the user owns (compose mounts named volumes there).
ENV IMAGE2MODEL_LISTEN=0.0.0.0:8080 \
    IMAGE2MODEL_DATA_DIR=/data \
    TELEMETRY_ADMIN_ADDR=0.0.0.0:9464 \
    TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED=true \
    TELEMETRY_LOG_DIR=/var/log/image2model
USER 10001:10001
WORKDIR /data
EXPOSE 8080 9464
# /ready answers 200 only when storage is writable, the workers run and the app accepts jobs.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/ready"]
ENTRYPOINT ["/usr/local/bin/image2model"]
CMD ["serve"]
