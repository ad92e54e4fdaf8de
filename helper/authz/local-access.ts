import { isIP } from 'node:net';
import type { Logger } from '../core/log.js';
import type { Policy } from './authz.js';
import { authorizeGrpcCall, type LocalDoor } from './caller.js';
import { resolveOperator } from './operator.js';
import { ownersKnowable } from './socket-owner.js';

// Wires helper/authz into the helper's start: decides the operator and builds the two local doors
// (native gRPC, HTTP) that the servers consult.

export interface LocalAccess {
  policy: Policy;
  grpcDoor: LocalDoor;
  httpDoor: LocalDoor;
  /** For startGrpcServer({ authorize }). */
  authorizeGrpc: (call: Parameters<typeof authorizeGrpcCall>[1], need: Parameters<typeof authorizeGrpcCall>[2]) => ReturnType<typeof authorizeGrpcCall>;
  setGrpcPort(port: number): void;
}

export async function localAccess(opts: { stateDir: string; operatorFlag: string | undefined; token: string; host: string; log: Logger }): Promise<LocalAccess> {
  const operator = resolveOperator({ flag: opts.operatorFlag, env: process.env, stateDir: opts.stateDir });
  const policy: Policy = { selfUid: process.getuid?.() ?? 0, operatorUid: operator.uid, ownersKnowable: await ownersKnowable() };
  if (!policy.ownersKnowable) opts.log.warn('this system cannot tell which local user opened a connection (no /proc/net/tcp): any local process holding the install token may control the helper');
  opts.log.info('local access', { operatorUid: operator.uid, operatorFrom: operator.from, selfUid: policy.selfUid });
  const serverAddr = isIP(opts.host) ? opts.host : null;
  let grpcPort = 0;
  const grpcDoor: LocalDoor = { policy, token: opts.token, serverAddr, serverPort: () => grpcPort };
  const httpDoor: LocalDoor = { policy, token: opts.token, serverAddr, serverPort: () => 0 };
  return {
    policy,
    grpcDoor,
    httpDoor,
    authorizeGrpc: (call, need) => authorizeGrpcCall(grpcDoor, call, need),
    setGrpcPort: (p) => {
      grpcPort = p;
    },
  };
}
