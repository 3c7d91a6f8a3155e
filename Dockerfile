# remora sidecar image: the single binary dist/remora-bun on a minimal base.
# Build: docker build -t remora .   Run: docker run remora proxy --config /etc/remora/sidecar.yaml
# (No Docker engine runs on the development machines; see docs/runtimes.md.)

# Stage 1: node (from the image) runs npm ci, which brings the pinned Node, Bun and Deno;
# scripts/build-bin.ts bundles with esbuild and compiles with `bun build --compile`.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY scripts ./scripts
COPY policies ./policies
RUN node scripts/build-bin.ts && ./dist/remora-bun version

# Stage 2: glibc and libstdc++ only, no shell; the binary needs nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/remora-bun /usr/local/bin/remora-bun
# distroless's "nonroot" user (65532): the sidecar needs no privilege for ports above 1024.
# `remora init` (iptables redirection) runs as root in a separate init container.
USER 65532:65532
# admin, outbound, inbound (Istio's ports)
EXPOSE 15000 15001 15006
ENTRYPOINT ["/usr/local/bin/remora-bun"]
CMD ["proxy", "--help"]
