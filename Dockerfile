# syntax=docker/dockerfile:1
# dirsync: build the release binary, then copy it into a minimal non-root runtime image.
# The binary uses rustls (no OpenSSL); the runtime only needs glibc, libgcc and CA certificates,
# which gcr.io/distroless/cc-debian12 provides.
#   docker build -t ghcr.io/dirsync/dirsync:0.1.0 .

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
RUN mkdir src \
 && printf 'fn main() {}\n' > src/main.rs \
 && printf '' > src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && cp target/release/dirsync /dirsync \
 && /dirsync --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /dirsync /usr/local/bin/dirsync
# 65532 = distroless "nonroot"; the chart sets the same uid and a read-only root filesystem.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dirsync"]
CMD ["controller"]
