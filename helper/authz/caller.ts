import type { Metadata } from '@grpc/grpc-js';
import { bearerToken, tokenMatches } from '../core/token.js';
import { authorize, decodeForwarded, FORWARDED_METADATA, isController, type Decision, type Identity, type LocalIdentity, type Need, type Policy } from './authz.js';
import { socketOwnerUid, splitPeer, type Connection } from './socket-owner.js';

// Establishes who is behind a call on the helper's local doors, from the kernel (socket owner) and
// never from what the caller says, then asks authz.ts.

export interface LocalDoor {
  policy: Policy;
  token: string;
  /** The address and port our listener is bound to; the address may be null (match any). */
  serverAddr: string | null;
  serverPort: () => number;
  /** Injected in tests; the /proc reader by default. */
  ownerOf?: (conn: Connection) => Promise<number | null>;
}

export interface GrpcCallView {
  getPeer(): string;
  metadata: Metadata;
}

async function uidOf(door: LocalDoor, clientAddr: string, clientPort: number, serverAddr: string | null = door.serverAddr, serverPort = door.serverPort()): Promise<number | null> {
  if (!door.policy.ownersKnowable) return null;
  return (door.ownerOf ?? socketOwnerUid)({ clientAddr, clientPort, serverAddr, serverPort });
}

export async function grpcCaller(door: LocalDoor, call: GrpcCallView): Promise<Identity> {
  const presented = bearerToken(call.metadata.get('authorization')[0]?.toString());
  const tokenOk = tokenMatches(door.token, presented);
  const peer = splitPeer(call.getPeer());
  const uid = peer === null ? null : await uidOf(door, peer.addr, peer.port);
  const forwarded = call.metadata.get(FORWARDED_METADATA)[0];
  if (forwarded !== undefined && isController(uid, door.policy)) {
    const id = decodeForwarded(forwarded.toString());
    // A malformed forward from a controller is its own bug: treat it as nobody, never as itself.
    return id ?? { kind: 'local', uid: null, via: 'web', tokenOk: false };
  }
  return { kind: 'local', uid, via: 'grpc', tokenOk, tokenPresented: presented !== undefined };
}

type SocketView = { remoteAddress?: string | undefined; remotePort?: number | undefined; localAddress?: string | undefined; localPort?: number | undefined };

// One lookup per HTTP connection: the socket object is that connection, so keep-alive requests
// reuse the answer and a reused port (a new connection) is a new object, looked up afresh.
const socketUids = new WeakMap<SocketView, Promise<number | null>>();

/** The HTTP side: the same lookup for a request's socket (its local address is exactly ours). */
export async function httpCaller(door: LocalDoor, socket: SocketView, authorization: string | undefined): Promise<LocalIdentity> {
  const tokenOk = tokenMatches(door.token, bearerToken(authorization));
  let uid = socketUids.get(socket);
  if (uid === undefined) {
    uid = socket.remoteAddress && socket.remotePort ? uidOf(door, socket.remoteAddress, socket.remotePort, socket.localAddress ?? door.serverAddr, socket.localPort ?? door.serverPort()) : Promise.resolve(null);
    socketUids.set(socket, uid);
  }
  return { kind: 'local', uid: await uid, via: 'web', tokenOk };
}

export async function authorizeGrpcCall(door: LocalDoor, call: GrpcCallView, need: Need): Promise<Decision> {
  const id = await grpcCaller(door, call);
  const d = authorize(id, need, door.policy);
  return d.ok ? { ok: true, identity: id } : d;
}
