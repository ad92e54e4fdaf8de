// Who may do what to the helper: one pure decision shared by every door (native gRPC, the
// gRPC-Web bridge, /api/session, and any later endpoint such as /metrics).
//
// Rules (DESIGN.md, security): headers prove nothing about who is local. Control belongs to root,
// to the operator (the user who installed or started LANrage) and to the helper's own user, all
// identified by the kernel (owner uid of the client's loopback socket). Other local users get
// nothing, not even reads: party state includes invite links, which are join secrets.
// Control also needs the install token (the per-install secret of the security rules), with one
// exception: the operator on native gRPC, whom the kernel names and who cannot read root's 0600
// token file (so the CLI works without sudo). Root and the helper's own user can read the token.
// Through the web bridge the token is always needed: every page the user visits can send requests
// to localhost (CSRF), and the token reaches only pages that pass the Host/Origin guards, and only
// for users with control.

// 'admin': managing remote access itself (pairing, revoking, the listener); only the local
// controller, never a paired device, so a phone cannot widen remote access.
// 'pair': trading a pairing code for a token; the code is the credential.
export type Need = 'read' | 'control' | 'admin' | 'pair';

export type Identity =
  /** A caller on this machine; uid null = the kernel did not say (connection gone, no /proc). */
  | { kind: 'local'; uid: number | null; via: 'grpc' | 'web'; tokenOk: boolean; tokenPresented?: boolean }
  /** A paired device (a phone) with its scoped token, arriving through the remote listener. */
  | { kind: 'remote'; scope: 'view' | 'control'; deviceId: string }
  /** An unpaired device on the remote listener: it may only try a pairing code. */
  | { kind: 'pairing' };

export type LocalIdentity = Extract<Identity, { kind: 'local' }>;

export interface Policy {
  /** The helper's own uid (0 when it runs as root). */
  selfUid: number;
  /** The operator's uid, or null when there is none (then only root and the helper's own user). */
  operatorUid: number | null;
  /** False where the kernel cannot name a socket's owner (no /proc): the install token decides. */
  ownersKnowable: boolean;
}

/** On success, the caller it was decided for (when the door knows it), so answers can fit it. */
export type Decision = { ok: true; identity?: Identity } | { ok: false; reason: 'unauthenticated' | 'denied'; message: string };

const OK: Decision = { ok: true };

export function isController(uid: number | null, policy: Policy): boolean {
  return uid !== null && (uid === 0 || uid === policy.selfUid || uid === policy.operatorUid);
}

export function authorize(id: Identity, want: Need, policy: Policy): Decision {
  if (id.kind === 'pairing') {
    if (want === 'pair') return OK;
    return { ok: false, reason: 'unauthenticated', message: 'this device is not paired: scan the pairing QR code shown in LANrage on the desktop (Settings, Phone)' };
  }
  if (id.kind === 'remote') {
    if (want === 'admin') return { ok: false, reason: 'denied', message: 'a paired device may not manage remote access (pairings, revocation, the listener): do that on the desktop' };
    if (want === 'read' || want === 'pair' || id.scope === 'control') return OK;
    return { ok: false, reason: 'denied', message: 'this paired device has a view-only token; pair it again with control access from the desktop to change things' };
  }
  // Locally, managing remote access is control and pairing is a read.
  const need = want === 'admin' ? 'control' : want === 'pair' ? 'read' : want;
  if (!policy.ownersKnowable) {
    if (need === 'read' || id.tokenOk) return OK;
    return { ok: false, reason: 'unauthenticated', message: 'this call changes the helper and needs the install token: send metadata "authorization: Bearer <token>" (the token is in the helper state directory, file api-token)' };
  }
  if (!isController(id.uid, policy)) {
    const who = id.uid === null ? 'an unidentified local user' : `local user uid ${id.uid}`;
    const allowed = policy.operatorUid === null ? 'root' : `root and the operator (uid ${policy.operatorUid})`;
    return { ok: false, reason: 'denied', message: `${who} may not use this LANrage helper: only ${allowed} may. Run it as that user, or restart the helper with --operator <user>` };
  }
  if (need === 'read' || id.tokenOk) return OK;
  if (id.via === 'web') {
    return { ok: false, reason: 'unauthenticated', message: 'this call changes the helper and needs the session token: reload the LANrage page' };
  }
  // The operator cannot read root's token file; the kernel has named them, and a native gRPC
  // connection cannot come from a web page, so that is enough.
  if (id.uid === policy.operatorUid) return OK;
  if (id.tokenPresented) return { ok: false, reason: 'unauthenticated', message: 'the install token is wrong' };
  return { ok: false, reason: 'unauthenticated', message: 'this call changes the helper and needs the install token: send metadata "authorization: Bearer <token>" (the token is in the helper state directory, file api-token)' };
}

// A process that forwards calls on behalf of others (the gRPC-Web bridge, the remote listener)
// names the real caller in this metadata entry. It is believed only from a connection whose own
// kernel identity already has control, so forwarding can only narrow what a call may do.
export const FORWARDED_METADATA = 'x-lanrage-forwarded-for';

export function encodeForwarded(id: Identity): string {
  if (id.kind === 'pairing') return 'pairing';
  return id.kind === 'local' ? `local;uid=${id.uid ?? '-'};via=${id.via};token=${id.tokenOk ? 1 : 0}` : `remote;scope=${id.scope};device=${id.deviceId}`;
}

export function decodeForwarded(v: string): Identity | null {
  if (v === 'pairing') return { kind: 'pairing' };
  const [kind, ...parts] = v.split(';');
  const f = new Map(parts.map((p) => p.split('=', 2) as [string, string]));
  if (kind === 'local') {
    const u = f.get('uid');
    const uid = u === '-' ? null : /^\d{1,10}$/.test(u ?? '') ? Number(u) : undefined;
    const via = f.get('via');
    if (uid === undefined || (via !== 'grpc' && via !== 'web')) return null;
    return { kind: 'local', uid, via, tokenOk: f.get('token') === '1' };
  }
  if (kind === 'remote') {
    const scope = f.get('scope');
    const deviceId = f.get('device') ?? '';
    if ((scope !== 'view' && scope !== 'control') || !/^[A-Za-z0-9_-]{1,64}$/.test(deviceId)) return null;
    return { kind: 'remote', scope, deviceId };
  }
  return null;
}
