#!/usr/bin/env bash
# `npm start` on a fresh Debian clone: installs what the helper needs (the Debian packages for
# WireGuard and nftables when missing, as root; the npm packages from the lock file), builds, and
# starts the helper. Arguments go to `lanrage helper` (e.g. `npm start -- --state-dir DIR`).
# `--prepare` as the first argument does everything but start the helper; `--deps` only installs.
# LANRAGE_SKIP_BUILD=1 uses dist/ as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

lanrage_check_node
lanrage_need wg wireguard-tools
lanrage_need nft nftables
lanrage_need ip iproute2
# The helper uses the kernel's WireGuard when it has the module, wireguard-go otherwise.
if [ ! -d /sys/module/wireguard ] && ! modprobe -nq wireguard 2>/dev/null; then lanrage_need wireguard-go wireguard-go; fi
lanrage_install_missing "the helper and the PWA run, but creating or joining a party will fail"

lanrage_npm_sync
if [ "${1:-}" = --deps ]; then exit 0; fi
if [ "${LANRAGE_SKIP_BUILD:-}" != 1 ]; then
  lanrage_log "build (buf generate, tsc, vite)"
  npm run build --silent
fi

if [ "${1:-}" = --prepare ]; then exit 0; fi
[ "$(id -u)" -eq 0 ] || echo "*** not root: the helper and the PWA run, but parties need root (the WireGuard interface). Run: sudo npm start"
lanrage_log "starting the helper: open http://localhost:8666"
exec node dist/helper/main.js helper "$@"
