#!/usr/bin/env bash
# A public LANrage server in one command, on a fresh Debian machine: `lanrage control` (parties,
# invites, STUN) and coturn (the relay), as systemd services under a service user, with a
# generated TURN secret shared by both. Prints the ports to open and the control URL players put
# in their settings. Run it from a clone of the repository, as root:
#
#   sudo installers/server/install.sh --public-ip 203.0.113.10 [--domain lan.example.org \
#        --tls-cert fullchain.pem --tls-key privkey.pem]
#
# Re-running it upgrades the program and keeps the secret and the control server's database.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
  cat <<EOF
usage: $0 --public-ip IPV4 [options]
  --public-ip IPV4      the address players reach this machine at (required)
  --private-ip IPV4     this machine's own address when a 1:1 NAT (cloud VM) maps the public one to it
  --domain NAME         the name in the control URL (default: the public IP); needed for TLS
  --tls-cert FILE       certificate chain (PEM) for the control server: players then use https://
  --tls-key FILE        its private key (PEM)
  --control-port PORT   control server, TCP (default 8670)
  --stun-port PORT      control server's STUN, UDP PORT and PORT+1 (default 8671)
  --turn-port PORT      coturn, UDP and TCP (default 3478)
  --user NAME           service user (default lanrage)
  --root DIR            install under DIR instead of / (staging, tests); services are not started
  --no-start            write everything, start nothing
EOF
}

public_ip='' private_ip='' domain='' cert='' key='' root='' start=yes user=lanrage
control_port=8670 stun_port=8671 turn_port=3478
while (($#)); do
  case $1 in
    --public-ip) public_ip=${2:?}; shift ;;
    --private-ip) private_ip=${2:?}; shift ;;
    --domain) domain=${2:?}; shift ;;
    --tls-cert) cert=${2:?}; shift ;;
    --tls-key) key=${2:?}; shift ;;
    --control-port) control_port=${2:?}; shift ;;
    --stun-port) stun_port=${2:?}; shift ;;
    --turn-port) turn_port=${2:?}; shift ;;
    --user) user=${2:?}; shift ;;
    --root) root=${2:?}; start=no; shift ;;
    --no-start) start=no ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

die() { echo "install: $*" >&2; exit 1; }
ipv4='^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$'
[[ $public_ip =~ $ipv4 ]] || die "--public-ip IPV4 is required (the address players reach this machine at)"
[[ -z $private_ip || $private_ip =~ $ipv4 ]] || die "--private-ip must be an IPv4 address"
[[ -z $domain || $domain =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || die "--domain must be a DNS name"
[[ $user =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "--user must be a plain user name"
for p in "$control_port" "$stun_port" "$turn_port"; do [[ $p =~ ^[0-9]+$ ]] && ((p >= 1 && p <= 65534)) || die "bad port $p"; done
if [[ -n $cert || -n $key ]]; then
  [[ -r $cert && -r $key ]] || die "--tls-cert and --tls-key go together and must be readable files"
  [[ -n $domain ]] || die "TLS needs --domain: the certificate names a host, and players connect by that name"
fi
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user, installs packages and systemd units)"

cd "$repo"
. scripts/lib.sh
lanrage_check_node
lanrage_need turnserver coturn
lanrage_need openssl openssl
lanrage_install_missing "the server cannot be installed without them"
((${#lanrage_missing[@]} == 0)) || command -v turnserver >/dev/null || die "coturn is missing"
lanrage_npm_sync
# LANRAGE_SKIP_BUILD=1: use the build in dist/ as it is (tests, which have just built it).
if [ "${LANRAGE_SKIP_BUILD:-}" != 1 ]; then lanrage_log "build"; npm run build --silent; fi

prefix=$root/opt/lanrage
etc=$root/etc/lanrage
state=$root/var/lib/lanrage-control
units=$root/etc/systemd/system
run_prefix=/opt/lanrage run_etc=/etc/lanrage run_state=/var/lib/lanrage-control

lanrage_log "service user $user"
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$run_state" --no-create-home --shell /usr/sbin/nologin "$user"
fi

lanrage_log "program in $run_prefix"
mkdir -p "$prefix" "$etc" "$state" "$units"
# A fresh copy each time (upgrade): the old tree goes only once the new one is complete.
rm -rf "$prefix.new"
mkdir -p "$prefix.new"
cp -a dist package.json package-lock.json "$prefix.new/"
# Only the run-time packages (node_modules may be a link to a shared install: copy its contents).
mkdir -p "$prefix.new/node_modules"
node scripts/prod-modules.mjs | while read -r m; do
  mkdir -p "$prefix.new/$(dirname "$m")"
  cp -a "$m/." "$prefix.new/$m"
done
rm -rf "$prefix.old"
if [ -e "$prefix/package.json" ]; then mv "$prefix" "$prefix.old"; else rm -rf "$prefix"; fi
mv "$prefix.new" "$prefix"
rm -rf "$prefix.old"
chown -R "$user:$user" "$state"
chmod 0700 "$state"

# The TURN secret: generated once, kept on re-install. The control server mints credentials with
# it and coturn checks them with it; nobody else needs it.
secret_file=$etc/turn-secret
if [ ! -s "$secret_file" ]; then
  lanrage_log "generating the TURN secret"
  (umask 077; openssl rand -base64 33 > "$secret_file")
fi
chown "root:$user" "$secret_file"
chmod 0640 "$secret_file"
secret=$(tr -d '\n' < "$secret_file")

tls_args=''
scheme=http
if [[ -n $cert ]]; then
  install -m 0644 -o root -g "$user" "$cert" "$etc/tls-cert.pem"
  install -m 0640 -o root -g "$user" "$key" "$etc/tls-key.pem"
  tls_args=" --tls-cert $run_etc/tls-cert.pem --tls-key $run_etc/tls-key.pem"
  scheme=https
fi

lanrage_log "coturn configuration $run_etc/turnserver.conf"
# The shipped configuration, with this server's values: only relaying between its own allocations.
sed -e "s|^static-auth-secret=.*|static-auth-secret=$secret|" \
    -e "s|^listening-port=.*|listening-port=$turn_port|" \
    -e "s|^realm=.*|realm=${domain:-lanrage}|" \
    -e "s|^syslog$|log-file=stdout|" \
    "$here/turnserver.conf" > "$etc/turnserver.conf.new"
{
  echo
  echo "# ---------------------------------------------------------------- this server (install.sh)"
  echo "allowed-peer-ip=$public_ip"
  # Listen (and relay) on the one address players reach, not on every interface.
  echo "listening-ip=${private_ip:-$public_ip}"
  echo "relay-ip=${private_ip:-$public_ip}"
  if [[ -n $private_ip ]]; then echo "external-ip=$public_ip/$private_ip"; fi
  # coturn opens its (unused: use-auth-secret) user database even so; keep it in its state dir.
  echo "userdb=/var/lib/$user-turn/turndb"
} >> "$etc/turnserver.conf.new"
chown "root:$user" "$etc/turnserver.conf.new"
chmod 0640 "$etc/turnserver.conf.new"
mv "$etc/turnserver.conf.new" "$etc/turnserver.conf"

lanrage_log "systemd units lanrage-control.service, lanrage-turn.service"
node_bin=$(command -v node)
cat > "$units/lanrage-control.service" <<EOF
# LANrage control server (parties, invites, STUN). Written by installers/server/install.sh.
[Unit]
Description=LANrage control server
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$user
Group=$user
ExecStart=$node_bin $run_prefix/dist/helper/main.js control --state-dir $run_state --grpc-port $control_port --stun-port $stun_port --advertise-host $public_ip --relay $public_ip:$turn_port --turn-secret-file $run_etc/turn-secret$tls_args
Restart=on-failure
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=$run_state

[Install]
WantedBy=multi-user.target
EOF
cat > "$units/lanrage-turn.service" <<EOF
# coturn as the LANrage relay, with its own configuration (Debian's coturn.service stays off).
# Written by installers/server/install.sh.
[Unit]
Description=LANrage relay (coturn)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$user
Group=$user
ExecStart=$(command -v turnserver) -c $run_etc/turnserver.conf --pidfile=/run/$user-turn/turnserver.pid
RuntimeDirectory=$user-turn
StateDirectory=$user-turn
Restart=on-failure
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
EOF

url="$scheme://${domain:-$public_ip}:$control_port"
if [ "$start" = yes ]; then
  if [ -d /run/systemd/system ]; then
    lanrage_log "starting"
    systemctl daemon-reload
    systemctl enable --now lanrage-control.service lanrage-turn.service
  else
    echo "systemd is not running here: start the two ExecStart lines of $units/lanrage-*.service yourself."
  fi
fi

cat <<EOF

== LANrage server installed
Open these ports inbound (firewall, cloud security group):
  $control_port/tcp            control server (parties, invites)
  $stun_port-$((stun_port + 1))/udp        STUN (players learn their public address)
  $turn_port/udp and $turn_port/tcp  relay (coturn)
  49152-65535/udp       relayed addresses (coturn)

Players put this control URL in their settings (PWA: Settings → Control server, or
\`lanrage settings set control_server_url $url\`), then create parties:
CONTROL_URL=$url
EOF
