#!/usr/bin/env bash
# `npm test`: installs what the tests need on a fresh Debian machine (Debian packages when
# missing, npm packages from the lock file), builds everything, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n== %s\n' "$*"; }

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
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
# Port mapping tests run a real UPnP IGD / NAT-PMP / PCP router (nftables build).
need miniupnpd miniupnpd-nftables
# LAN discovery tests use a real mDNS stack (avahi) with its own dbus per lab site.
need avahi-daemon avahi-daemon
need avahi-browse avahi-utils
need dbus-daemon dbus-daemon
# Game detection tests start real game servers from Debian (/usr/games is not on root's PATH).
[ -x /usr/games/teeworlds-server ] || missing+=(teeworlds-server)
[ -x /usr/games/openarena-server ] || missing+=(openarena-server)
/usr/bin/python3 -c 'import grpc, grpc_tools' >/dev/null 2>&1 || missing+=(python3-grpcio python3-grpc-tools)
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # Tests start coturn and avahi themselves, inside lab namespaces; the packages must not start
    # them on this machine's own network (avahi would announce on the real LAN).
    blocker=/usr/sbin/policy-rc.d
    ours=no
    if [ ! -e "$blocker" ]; then
      ours=yes
      printf '#!/bin/sh\nexit 101\n' > "$blocker"
      chmod +x "$blocker"
      trap 'rm -f "$blocker"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The trap covers a failed install; `exec` below would skip it, so remove ours now.
    if [ "$ours" = yes ]; then rm -f "$blocker"; trap - EXIT; fi
  else
    echo "*** MISSING Debian packages: ${missing[*]} — the tests that need them will skip (or fail in CI)."
    echo "*** Install them with: sudo apt-get install ${missing[*]}"
  fi
fi

# npm ci only when the lock file changed since the last install: it rebuilds better-sqlite3 (~1 min).
stamp=node_modules/.lanrage-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  # npm 11 leaves other platforms' optional packages (buf, rollup binaries) out of the lock file and
  # then `npm ci` refuses it as out of sync (npm/cli#8320); `npm install` still installs the
  # versions the lock pins.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/lanrage-npm-ci.err; then
    grep -q EUSAGE /tmp/lanrage-npm-ci.err || { cat /tmp/lanrage-npm-ci.err; exit 1; }
    echo "npm ci refused the lock file (npm/cli#8320); using npm install"
    npm install --no-audit --no-fund --loglevel=error
  fi
  echo "$want" > "$stamp"
fi

log "build (buf generate, tsc, vite)"
npm run build --silent
log "buf lint"
npx --no-install buf lint

log "tests"
shopt -s nullglob
files=(dist/test/unit/*.test.js dist/test/integration/*.test.js dist/test/lab/*.test.js dist/test/browser/*.test.js)
exec node --test --test-reporter=spec --test-timeout=180000 "${files[@]}"
