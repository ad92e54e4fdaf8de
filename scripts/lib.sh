# Shared by `npm start` (scripts/start.sh) and `npm test` (test/run.sh): Debian packages and npm
# packages for a fresh Debian clone. Source it from the repository root; it defines functions only.

lanrage_log() { printf '\n== %s\n' "$*"; }

# Debian packages to install: `lanrage_need COMMAND PACKAGE...` adds PACKAGE when COMMAND is missing.
lanrage_missing=()
lanrage_need() {
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null 2>&1 || lanrage_missing+=("$@")
}

# Installs lanrage_missing with apt-get when root; otherwise says what is missing and the command.
# $1: what goes without them (for the message). Returns 0 in both cases: callers decide what a
# missing package costs.
lanrage_install_missing() {
  local without=$1
  ((${#lanrage_missing[@]})) || return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "*** MISSING Debian packages: ${lanrage_missing[*]} — $without."
    echo "*** Install them with: sudo apt-get install ${lanrage_missing[*]}"
    return 0
  fi
  lanrage_log "installing Debian packages: ${lanrage_missing[*]}"
  apt-get update -qq
  # Packages must not start their daemons on this machine's own network (coturn, avahi): tests
  # run them inside lab namespaces, and the helper needs none of them running.
  local blocker=/usr/sbin/policy-rc.d ours=no rc=0
  if [ ! -e "$blocker" ]; then
    ours=yes
    printf '#!/bin/sh\nexit 101\n' > "$blocker"
    chmod +x "$blocker"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${lanrage_missing[@]}" >/dev/null || rc=$?
  if [ "$ours" = yes ]; then rm -f "$blocker"; fi
  return $rc
}

# `npm ci` only when node_modules is not what package-lock.json pins (scripts/lock-check.mjs):
# it rebuilds better-sqlite3, which takes minutes on a small machine.
lanrage_npm_sync() {
  if node scripts/lock-check.mjs; then return 0; fi
  lanrage_log "npm ci (installs the packages package-lock.json pins)"
  npm ci --no-audit --no-fund --loglevel=error
}

# Node 20+ (the helper's engines field); apt's nodejs on Debian 12 is 18.
lanrage_check_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    echo "*** LANrage needs Node.js 20 or later (found: $(node -v 2>/dev/null || echo none)). See https://nodejs.org/en/download (or NodeSource's Debian packages)." >&2
    return 1
  fi
}
