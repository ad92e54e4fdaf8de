// Phone access: the desktop's RPCs (turn the listener on, pairing links, paired devices) and the
// phone's side of pairing (the code in the link's fragment traded for a device token).
import {
  CreatePairingRequest,
  GetRemoteAccessRequest,
  ListPairedDevicesRequest,
  PairRequest,
  RemoteAccessServiceDefinition,
  RemotePairingServiceDefinition,
  RemoteScope,
  RevokePairedDeviceRequest,
  SetRemoteAccessRequest,
  type PairedDevice,
  type RemoteAccess,
} from '../gen/lanrage/v1/remote.js';
import { unary } from '../api/transport.js';
import { markPairing, setDeviceToken } from '../api/session.js';

export type { PairedDevice, RemoteAccess };
export { RemoteScope };

const S = RemoteAccessServiceDefinition;

export async function getRemoteAccess(): Promise<RemoteAccess> {
  const res = await unary(S, S.methods.getRemoteAccess, GetRemoteAccessRequest.fromPartial({}), { auth: true });
  if (!res.remoteAccess) throw new Error('The helper answered without the remote access state.');
  return res.remoteAccess;
}

export async function setRemoteAccess(enabled: boolean, listenAddress: string, port: number): Promise<RemoteAccess> {
  const res = await unary(S, S.methods.setRemoteAccess, SetRemoteAccessRequest.fromPartial({ enabled, listenAddress, port }), { auth: true });
  if (!res.remoteAccess) throw new Error('The helper answered without the remote access state.');
  return res.remoteAccess;
}

export async function createPairing(scope: RemoteScope): Promise<{ link: string; expires: Date | undefined; fingerprint: string }> {
  const res = await unary(S, S.methods.createPairing, CreatePairingRequest.fromPartial({ scope }), { auth: true });
  return { link: res.link, expires: res.expires, fingerprint: res.certificateSha256 };
}

export async function listPairedDevices(): Promise<PairedDevice[]> {
  return (await unary(S, S.methods.listPairedDevices, ListPairedDevicesRequest.fromPartial({}), { auth: true })).devices;
}

export async function revokePairedDevice(deviceId: string): Promise<void> {
  await unary(S, S.methods.revokePairedDevice, RevokePairedDeviceRequest.fromPartial({ deviceId }), { auth: true });
}

export const scopeLabel = (s: RemoteScope): string => (s === RemoteScope.REMOTE_SCOPE_CONTROL ? 'control' : 'view only');

const PAIR_FRAGMENT = /^#pair=([A-Za-z0-9_-]{1,128})$/;

function phoneName(): string {
  const ua = navigator.userAgent;
  if (/iPhone/.test(ua)) return 'iPhone';
  if (/iPad/.test(ua)) return 'iPad';
  if (/Android/.test(ua)) return 'Android phone';
  return 'Phone';
}

export type PairingOutcome = { state: 'none' } | { state: 'paired'; scope: RemoteScope } | { state: 'failed'; message: string };

/** On the phone: when the page was opened from a pairing link, pair and keep the token. */
export async function pairFromLocation(): Promise<PairingOutcome> {
  const m = PAIR_FRAGMENT.exec(window.location.hash);
  // Pairing links are https (the phone listener); the desktop's own page never pairs itself.
  if (!m || window.location.protocol !== 'https:') return { state: 'none' };
  markPairing();
  // The code is single-use: drop it from the address bar and history whatever happens.
  history.replaceState(null, '', window.location.pathname + window.location.search);
  try {
    const res = await unary(RemotePairingServiceDefinition, RemotePairingServiceDefinition.methods.pair, PairRequest.fromPartial({ code: m[1] ?? '', deviceName: phoneName() }), { anonymous: true });
    setDeviceToken(res.token);
    return { state: 'paired', scope: res.scope };
  } catch (err) {
    return { state: 'failed', message: `Pairing failed: ${(err as Error).message}` };
  }
}

let outcome: PairingOutcome = { state: 'none' };
const listeners = new Set<() => void>();

export function pairingOutcome(): PairingOutcome {
  return outcome;
}

export function setPairingOutcome(o: PairingOutcome): void {
  outcome = o;
  for (const l of listeners) l();
}

export function onPairingOutcome(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
