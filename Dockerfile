# Multi-stage build: compile in the Rust image, run in a small Debian image as a
# non-root user. The time zone database is bundled in the binary (jiff), and TLS
# uses rustls, so the runtime image needs only CA certificates.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin balas

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app balas \
 && mkdir -p /app/data && chown balas /app/data
WORKDIR /app
COPY --from=build /src/target/release/balas /usr/local/bin/balas
COPY intents ./intents
# The production config: webhooks always signed, secrets from the environment.
COPY config/production.toml ./config/balas.toml
USER balas
ENV BALAS_SERVER__LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["balas"]
CMD ["serve"]
