#!/usr/bin/env bash
# Builds the player's Debian package: the helper and the built PWA in /opt/NAME, a systemd unit,
# the state directory /var/lib/NAME, `NAME` on the PATH, and the operator user (the account that
# runs the helper and may use the CLI) as a setting in /etc/default/NAME.
#
#   installers/linux/build-deb.sh [--out DIR] [--name lanrage] [--version 0.1.0-1]
#
# Builds the project first (npm packages from the lock, buf, tsc, vite). Prints the .deb's path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. scripts/lib.sh

out=$repo/dist-deb name=lanrage version=''
while (($#)); do
  case $1 in
    --out) out=${2:?}; shift ;;
    --name) name=${2:?}; shift ;;
    --version) version=${2:?}; shift ;;
    *) echo "usage: $0 [--out DIR] [--name NAME] [--version VERSION]" >&2; exit 2 ;;
  esac
  shift
done
# The name becomes paths, a unit and a user-visible command: Debian's package-name rules, kept short.
[[ $name =~ ^[a-z][a-z0-9-]{1,30}$ ]] || { echo "--name must be 2-31 characters a-z, 0-9, -" >&2; exit 2; }
version=${version:-$(node -p 'require("./package.json").version')-1}
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "bad --version $version" >&2; exit 2; }
arch=$(dpkg --print-architecture)

lanrage_check_node
lanrage_npm_sync
# LANRAGE_SKIP_BUILD=1: use the build in dist/ as it is (tests, which have just built it).
[ "${LANRAGE_SKIP_BUILD:-}" = 1 ] || npm run build --silent
[ -f dist/pwa/index.html ] || { echo "the PWA is not built (dist/pwa/index.html): run npm run build" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
opt=$stage/opt/$name
mkdir -p "$opt" "$stage/DEBIAN" "$stage/lib/systemd/system" "$stage/usr/bin" "$stage/etc/default" "$stage/usr/share/doc/$name"
# The helper, the PWA (dist/pwa, found next to dist/helper) and the run-time packages only.
mkdir -p "$opt/dist"
cp -a dist/helper dist/pwa "$opt/dist/"
cp package.json "$opt/"
# Data the helper reads at run time beside dist/: the game profiles and the .proto files that
# gRPC server reflection serves.
mkdir -p "$opt/helper/games"
cp helper/games/profiles.json "$opt/helper/games/"
cp -a proto "$opt/"
node scripts/prod-modules.mjs | while read -r m; do
  mkdir -p "$opt/$(dirname "$m")"
  cp -a "$m/." "$opt/$m"
done

cat > "$stage/usr/bin/$name" <<EOF
#!/bin/sh
# The CLI of the $name package: talks to the service's helper (its state directory holds the token).
LANRAGE_STATE_DIR=\${LANRAGE_STATE_DIR:-/var/lib/$name} exec /usr/bin/node /opt/$name/dist/helper/main.js "\$@"
EOF
chmod 0755 "$stage/usr/bin/$name"

cat > "$stage/etc/default/$name" <<EOF
# Settings of the $name package. After a change: sudo dpkg-reconfigure $name (or re-install it).
#
# The operator: the account the helper runs as, and so the one that may use the CLI without sudo
# (it owns /var/lib/$name, where the API token is). root (the default) or an existing user; the
# helper keeps only CAP_NET_ADMIN and CAP_NET_RAW either way.
LANRAGE_OPERATOR=root
EOF

# The unit: installers/linux/lanrage.service with this package's paths.
sed -e "s|/opt/lanrage|/opt/$name|g" \
    -e "s|^StateDirectory=lanrage|StateDirectory=$name|" \
    -e "s|/var/lib/lanrage|/var/lib/$name|g" \
    -e "s|^Description=.*|Description=LANrage helper ($name package)|" \
    -e "/^# systemd unit for the LANrage helper/,/^# copy this file/d" \
    installers/linux/lanrage.service > "$stage/lib/systemd/system/$name.service"
sed -i "1i # The LANrage helper, from the $name Debian package. The operator (User=) is set by a drop-in\n# that the package writes from /etc/default/$name." "$stage/lib/systemd/system/$name.service"

cat > "$stage/usr/share/doc/$name/copyright" <<EOF
LANrage — MIT License. See https://opensource.org/license/mit
EOF

installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: LANrage <lanrage@example.org>
Installed-Size: $installed_kb
Depends: nodejs (>= 20) | node-runtime, wireguard-tools, nftables, iproute2, wireguard-go | linux-image-amd64 | linux-image-arm64
Section: net
Priority: optional
Homepage: https://example.org/lanrage
Description: LANrage: a virtual LAN for gamers
 A privileged helper that joins friends' machines into one LAN over WireGuard
 paths across NATs, with its PWA at http://localhost:8666.
EOF
echo "/etc/default/$name" > "$stage/DEBIAN/conffiles"

# Maintainer scripts. dpkg runs them as root; they touch only this package's paths and its own
# helper processes (found by this package's program path, ended by PID).
cat > "$stage/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
name=$name
EOF
cat >> "$stage/DEBIAN/postinst" <<'EOF'
[ "$1" = configure ] || exit 0
LANRAGE_OPERATOR=root
[ -r /etc/default/$name ] && . /etc/default/$name
case "$LANRAGE_OPERATOR" in
  ''|*[!a-z0-9_-]*) echo "$name: LANRAGE_OPERATOR in /etc/default/$name must be a user name" >&2; exit 1 ;;
esac
if ! id -u "$LANRAGE_OPERATOR" >/dev/null 2>&1; then
  echo "$name: the operator user \"$LANRAGE_OPERATOR\" (/etc/default/$name) does not exist: create it, or set root" >&2
  exit 1
fi
mkdir -p /var/lib/$name
chown -R "$LANRAGE_OPERATOR:" /var/lib/$name
chmod 0700 /var/lib/$name
dropin=/etc/systemd/system/$name.service.d
mkdir -p $dropin
printf '# Written by the %s package from /etc/default/%s.\n[Service]\nUser=%s\n' "$name" "$name" "$LANRAGE_OPERATOR" > $dropin/operator.conf
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable $name.service >/dev/null
  # An upgrade restarts the helper with the new program; the state directory stays.
  systemctl restart $name.service
  echo "$name: running; open http://localhost:8666"
else
  echo "$name: systemd is not running here; start the helper with: $(sed -n 's/^ExecStart=//p' /lib/systemd/system/$name.service)"
fi
EOF

cat > "$stage/DEBIAN/prerm" <<EOF
#!/bin/sh
# Stops the helper before its files go (remove, upgrade, and a half-installed package too).
set -e
name=$name
EOF
cat >> "$stage/DEBIAN/prerm" <<'EOF'
if [ -d /run/systemd/system ]; then
  systemctl stop $name.service 2>/dev/null || true
  [ "$1" = remove ] && systemctl disable $name.service 2>/dev/null || true
fi
# Started by hand (no systemd) or left over: this package's own program, by PID.
prog=/opt/$name/dist/helper/main.js
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  if tr '\0' '\n' < "$d/cmdline" 2>/dev/null | grep -qxF "$prog"; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
exit 0
EOF

cat > "$stage/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
name=$name
EOF
cat >> "$stage/DEBIAN/postrm" <<'EOF'
case "$1" in
  remove)
    rm -rf /etc/systemd/system/$name.service.d
    [ -d /run/systemd/system ] && systemctl daemon-reload || true
    ;;
  purge)
    rm -rf /etc/systemd/system/$name.service.d /var/lib/$name
    ;;
esac
exit 0
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$out"
deb=$out/${name}_${version}_$arch.deb
dpkg-deb --root-owner-group --build -Zgzip -z1 "$stage" "$deb" >/dev/null
echo "$deb"
