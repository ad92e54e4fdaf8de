import {
  RemoteAccessServiceService,
  RemotePairingServiceService,
  RemoteScope,
  type CreatePairingRequest,
  type CreatePairingResponse,
  type GetRemoteAccessResponse,
  type ListPairedDevicesResponse,
  type PairRequest,
  type PairResponse,
  type RemoteAccess as RemoteAccessMsg,
  type RevokePairedDeviceRequest,
  type SetRemoteAccessRequest,
  type SetRemoteAccessResponse,
} from '../gen/lanrage/v1/remote.js';
import type { Need } from '../authz/authz.js';
import { invalidArgument } from '../core/api-error.js';
import type { RemoteAccess, RemoteView } from '../remote/remote-access.js';
import type { RemoteScopeName } from '../store/paired-devices-repo.js';
import type { Handler } from './wrap.js';

export const remoteAccessDefinition = RemoteAccessServiceService;
export const remotePairingDefinition = RemotePairingServiceService;
// Only the local controller manages remote access, reads included: the view carries the URL and
// the list names the phones (helper/authz 'admin'). Pair is open: the code is the credential.
export const remoteAccessNeeds: Record<string, Need> = {
  getRemoteAccess: 'admin',
  setRemoteAccess: 'admin',
  createPairing: 'admin',
  listPairedDevices: 'admin',
  revokePairedDevice: 'admin',
};
export const remotePairingNeeds: Record<string, Need> = { pair: 'pair' };

const toScope = (s: RemoteScopeName): RemoteScope => (s === 'control' ? RemoteScope.REMOTE_SCOPE_CONTROL : RemoteScope.REMOTE_SCOPE_VIEW);

const toMsg = (v: RemoteView): RemoteAccessMsg => ({ enabled: v.enabled, listenAddress: v.address, port: v.port, url: v.url, certificateSha256: v.fingerprint });

export function remoteAccessHandlers(remote: RemoteAccess): Record<string, Handler> {
  return {
    getRemoteAccess: (): GetRemoteAccessResponse => ({ remoteAccess: toMsg(remote.view()) }),
    setRemoteAccess: async (req: SetRemoteAccessRequest): Promise<SetRemoteAccessResponse> => ({
      remoteAccess: toMsg(await remote.set(req.enabled, req.listenAddress, req.port)),
    }),
    createPairing: (req: CreatePairingRequest): CreatePairingResponse => {
      if (req.scope !== RemoteScope.REMOTE_SCOPE_VIEW && req.scope !== RemoteScope.REMOTE_SCOPE_CONTROL) {
        throw invalidArgument('scope must be REMOTE_SCOPE_VIEW or REMOTE_SCOPE_CONTROL');
      }
      const p = remote.createPairing(req.scope === RemoteScope.REMOTE_SCOPE_CONTROL ? 'control' : 'view');
      return { link: p.link, expires: new Date(p.expiresMs), certificateSha256: p.fingerprint };
    },
    listPairedDevices: (): ListPairedDevicesResponse => ({
      devices: remote.list().map((d) => ({ deviceId: d.deviceId, name: d.name, scope: toScope(d.scope), created: new Date(d.createdMs), lastSeen: new Date(d.lastSeenMs) })),
    }),
    revokePairedDevice: (req: RevokePairedDeviceRequest) => {
      remote.revoke(req.deviceId);
      return {};
    },
  };
}

export function remotePairingHandlers(remote: RemoteAccess): Record<string, Handler> {
  return {
    pair: (req: PairRequest): PairResponse => {
      const { token, device } = remote.pair(req.code, req.deviceName);
      return { token, scope: toScope(device.scope), deviceId: device.deviceId };
    },
  };
}
