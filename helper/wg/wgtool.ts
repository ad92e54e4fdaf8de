import { run } from './exec.js';
import { isWgKey } from './keys.js';
import { checkAllowedIps, checkEndpoint, checkIntRange, checkInterfaceName, checkKey } from './validate.js';
import type { DeviceSet, DeviceState, PeerState } from './uapi.js';

// The kernel backend speaks netlink, which Node cannot; `wg` does. The same DeviceSet/DeviceState
// as the UAPI backend, translated to `wg set` arguments and parsed from `wg show NAME dump`.
// The private key goes in on stdin (`private-key /dev/stdin`): never in argv, never in a file.

export function wgSetArgs(name: string, set: DeviceSet): { args: string[]; input: string } {
  const args = ['set', checkInterfaceName(name)];
  let input = '';
  if (set.listenPort !== undefined) args.push('listen-port', String(checkIntRange('listen port', set.listenPort, 0, 65535)));
  if (set.privateKey !== undefined) {
    input = checkKey('private key', set.privateKey) + '\n';
    args.push('private-key', '/dev/stdin');
  }
  for (const p of set.peers ?? []) {
    args.push('peer', checkKey('peer public key', p.publicKey));
    if (p.remove) {
      args.push('remove');
      continue;
    }
    if (p.endpoint !== undefined) args.push('endpoint', checkEndpoint(p.endpoint));
    if (p.persistentKeepaliveSeconds !== undefined) {
      args.push('persistent-keepalive', String(checkIntRange('persistent keepalive', p.persistentKeepaliveSeconds, 0, 65535)));
    }
    // `wg set ... allowed-ips` always replaces the list, as replace_allowed_ips does.
    if (p.allowedIps !== undefined) args.push('allowed-ips', checkAllowedIps(p.allowedIps).join(','));
  }
  return { args, input };
}

function num(field: string | undefined, what: string): number {
  if (field === undefined || !/^\d{1,20}$/.test(field)) throw new Error(`wg dump: ${what} is not a number`);
  return Number(field);
}

export function parseWgDump(text: string): DeviceState {
  const lines = text.split('\n').filter((l) => l !== '');
  const head = lines.shift()?.split('\t');
  if (!head || head.length < 4) throw new Error('wg dump: missing interface line');
  const state: DeviceState = { publicKey: isWgKey(head[1]) ? head[1] : null, listenPort: num(head[2], 'listen port'), peers: [] };
  for (const line of lines) {
    const f = line.split('\t');
    if (f.length < 8 || !isWgKey(f[0])) throw new Error('wg dump: malformed peer line');
    const hs = num(f[4], 'latest handshake');
    const peer: PeerState = {
      publicKey: f[0],
      endpoint: f[2] === '(none)' || f[2] === undefined ? null : f[2],
      allowedIps: f[3] === '(none)' || f[3] === undefined || f[3] === '' ? [] : f[3].split(','),
      lastHandshakeMs: hs === 0 ? null : hs * 1000,
      rxBytes: num(f[5], 'rx bytes'),
      txBytes: num(f[6], 'tx bytes'),
      persistentKeepaliveSeconds: f[7] === 'off' ? 0 : num(f[7], 'keepalive'),
    };
    state.peers.push(peer);
  }
  return state;
}

export async function wgToolGet(name: string): Promise<DeviceState> {
  const { stdout } = await run('wg', ['show', checkInterfaceName(name), 'dump']);
  return parseWgDump(stdout);
}

export async function wgToolSet(name: string, set: DeviceSet): Promise<void> {
  let peers = set.peers;
  // `wg` has no update_only: drop updates for peers that do not exist, as UAPI would.
  if (peers?.some((p) => p.updateOnly)) {
    const known = new Set((await wgToolGet(name)).peers.map((p) => p.publicKey));
    peers = peers.filter((p) => !p.updateOnly || known.has(p.publicKey));
  }
  const { args, input } = wgSetArgs(name, { ...set, peers });
  if (args.length === 2) return;
  await run('wg', args, { input });
}
