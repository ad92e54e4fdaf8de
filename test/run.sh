#!/usr/bin/env bash
# `npm test`: installs what the tests need on a fresh Debian machine (Debian packages when
# missing, npm packages from the lock file), builds everything, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { lanrage_log "$@"; }

. scripts/lib.sh
need() { lanrage_need "$@"; }
need chromium chromium
# The network lab: real WireGuard (userspace: no kernel module here), NAT routers, probes.
need wireguard-go wireguard-go
need wg wireguard-tools
need nft nftables
need ip iproute2
need conntrack conntrack
need ping iputils-ping
need iperf3 iperf3
need turnserver coturn
# The per-player metrics lab test has Debian's real Prometheus scrape the helper.
need prometheus prometheus
# Port mapping tests run a real UPnP IGD / NAT-PMP / PCP router (nftables build).
need miniupnpd miniupnpd-nftables
# LAN discovery tests use a real mDNS stack (avahi) with its own dbus per lab site.
need avahi-daemon avahi-daemon
need avahi-browse avahi-utils
need dbus-daemon dbus-daemon
# Game detection tests start real game servers from Debian (/usr/games is not on root's PATH).
[ -x /usr/games/teeworlds-server ] || lanrage_missing+=(teeworlds-server)
[ -x /usr/games/openarena-server ] || lanrage_missing+=(openarena-server)
# The party-wide discovery test finds the server with qstat's LAN broadcast.
need quakestat qstat
# The scaled-out control plane's tests start their own PostgreSQL cluster (not on PATH: Debian
# keeps the server binaries per version; the policy-rc.d blocker keeps the package's own
# cluster from starting).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || lanrage_missing+=(postgresql)
/usr/bin/python3 -c 'import grpc, grpc_tools' >/dev/null 2>&1 || lanrage_missing+=(python3-grpcio python3-grpc-tools)
lanrage_install_missing "the tests that need them will skip (or fail in CI)"
lanrage_npm_sync

log "build (buf generate, tsc, vite)"
npm run build --silent
log "buf lint"
npx --no-install buf lint

log "tests"
shopt -s nullglob
files=(dist/test/unit/*.test.js dist/test/integration/*.test.js dist/test/lab/*.test.js dist/test/browser/*.test.js)
# --test-timeout bounds each test FILE as well as each test (Node 20): relay.test (a 125 s relayed
# session by design) and symnat.test (birthday attempts 35 s apart) need more than 3 minutes in all.
exec node --test --test-reporter=spec --test-timeout=600000 "${files[@]}"
