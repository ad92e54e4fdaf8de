import { keyFromHex, keyToHex, publicKeyOf } from './keys.js';
import { checkAllowedIps, checkEndpoint, checkIntRange, checkKey } from './validate.js';

// WireGuard's cross-platform configuration protocol (https://www.wireguard.com/xplatform/):
// `set=1` / `get=1` followed by key=value lines and a blank line; the answer ends in `errno=N`.
// Pure encode/parse here; the socket and the `wg`-tool backends live elsewhere. Every value is
// validated before it is encoded: the protocol is line-based, so a newline in a value would be
// an injected setting.

/** One change to one peer. `allowedIps`, when present, replaces the peer's list. */
export interface PeerSet {
  publicKey: string;
  remove?: boolean;
  /** Change the peer only if it exists; never create it. */
  updateOnly?: boolean;
  endpoint?: string;
  allowedIps?: string[];
  persistentKeepaliveSeconds?: number;
}

export interface DeviceSet {
  /** base64; encoded as hex on the wire and never kept. */
  privateKey?: string;
  listenPort?: number;
  peers?: PeerSet[];
}

export interface PeerState {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix epoch milliseconds of the last completed handshake; null if none yet. */
  lastHandshakeMs: number | null;
  rxBytes: number;
  txBytes: number;
  persistentKeepaliveSeconds: number;
}

/** What `get=1` tells; the private key it also prints is deliberately not kept. */
export interface DeviceState {
  publicKey: string | null;
  listenPort: number;
  peers: PeerState[];
}

export function encodeSet(set: DeviceSet): string {
  const lines = ['set=1'];
  if (set.privateKey !== undefined) lines.push(`private_key=${keyToHex(checkKey('private key', set.privateKey))}`);
  if (set.listenPort !== undefined) lines.push(`listen_port=${checkIntRange('listen port', set.listenPort, 0, 65535)}`);
  for (const p of set.peers ?? []) {
    lines.push(`public_key=${keyToHex(checkKey('peer public key', p.publicKey))}`);
    // Must directly follow public_key: it changes how the peer line is resolved.
    if (p.updateOnly) lines.push('update_only=true');
    if (p.remove) {
      lines.push('remove=true');
      continue;
    }
    if (p.endpoint !== undefined) lines.push(`endpoint=${checkEndpoint(p.endpoint)}`);
    if (p.persistentKeepaliveSeconds !== undefined) {
      lines.push(`persistent_keepalive_interval=${checkIntRange('persistent keepalive', p.persistentKeepaliveSeconds, 0, 65535)}`);
    }
    if (p.allowedIps !== undefined) {
      lines.push('replace_allowed_ips=true');
      for (const cidr of checkAllowedIps(p.allowedIps)) lines.push(`allowed_ip=${cidr}`);
    }
  }
  return lines.join('\n') + '\n\n';
}

export const GET_REQUEST = 'get=1\n\n';

/** True once `buf` holds a whole answer (it always ends in an errno line and a blank line). */
export function isCompleteResponse(buf: string): boolean {
  return /(?:^|\n)errno=-?\d+\n\n$/.test(buf);
}

export class UapiError extends Error {
  constructor(readonly errno: number, op: string) {
    super(`WireGuard refused the ${op} (errno ${errno})`);
    this.name = 'UapiError';
  }
}

function lineEntries(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`malformed UAPI line: ${JSON.stringify(line.slice(0, 80))}`);
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

/** Throws UapiError unless the answer is errno=0. */
export function checkErrno(text: string, op: string): void {
  const m = /(?:^|\n)errno=(-?\d+)\n\n$/.exec(text);
  if (!m) throw new Error(`incomplete UAPI answer to ${op}`);
  const errno = Number(m[1]);
  if (errno !== 0) throw new UapiError(errno, op);
}

function uint(key: string, v: string): number {
  if (!/^\d{1,20}$/.test(v)) throw new Error(`UAPI ${key} is not a number: ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v);
}

export function parseGet(text: string): DeviceState {
  checkErrno(text, 'get');
  const state: DeviceState = { publicKey: null, listenPort: 0, peers: [] };
  let peer: (PeerState & { hsSec: number; hsNsec: number }) | null = null;
  const finish = (): void => {
    if (!peer) return;
    const { hsSec, hsNsec, ...rest } = peer;
    state.peers.push({ ...rest, lastHandshakeMs: hsSec === 0 && hsNsec === 0 ? null : hsSec * 1000 + Math.floor(hsNsec / 1e6) });
    peer = null;
  };
  for (const [k, v] of lineEntries(text)) {
    if (k === 'public_key') {
      finish();
      peer = { publicKey: keyFromHex(v), endpoint: null, allowedIps: [], lastHandshakeMs: null, rxBytes: 0, txBytes: 0, persistentKeepaliveSeconds: 0, hsSec: 0, hsNsec: 0 };
      continue;
    }
    if (!peer) {
      if (k === 'listen_port') state.listenPort = uint(k, v);
      // Only the public half of private_key is kept; fwmark and errno are of no use here.
      else if (k === 'private_key') state.publicKey = publicKeyOf(keyFromHex(v));
      continue;
    }
    switch (k) {
      case 'endpoint': peer.endpoint = v; break;
      case 'allowed_ip': peer.allowedIps.push(v); break;
      case 'rx_bytes': peer.rxBytes = uint(k, v); break;
      case 'tx_bytes': peer.txBytes = uint(k, v); break;
      case 'last_handshake_time_sec': peer.hsSec = uint(k, v); break;
      case 'last_handshake_time_nsec': peer.hsNsec = uint(k, v); break;
      case 'persistent_keepalive_interval': peer.persistentKeepaliveSeconds = uint(k, v); break;
      default: break; // preshared_key, protocol_version, errno
    }
  }
  finish();
  return state;
}
