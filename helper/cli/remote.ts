import { flag, portFlag } from '../core/args.js';
import {
  RemoteAccessServiceClient,
  RemoteScope,
  type CreatePairingRequest,
  type CreatePairingResponse,
  type GetRemoteAccessResponse,
  type ListPairedDevicesResponse,
  type PairedDevice,
  type RemoteAccess,
  type RevokePairedDeviceRequest,
  type SetRemoteAccessRequest,
  type SetRemoteAccessResponse,
} from '../gen/lanrage/v1/remote.js';
import { serviceCommand } from './call.js';
import { CliError, type CliContext } from './context.js';

// Phone access from the terminal (issue 11): the same RemoteAccessService the PWA's Settings,
// Phone card uses. Every call needs the local controller, so all of them send the install token;
// the helper's statuses (INVALID_ARGUMENT for a foreign address, FAILED_PRECONDITION when off...)
// are the error messages. The pairing link is printed, not drawn as a QR code: the QR library is
// a build-time (PWA) package that the .deb and server installs do not carry.

const USAGE = 'usage: lanrage remote [on [--address IP] [--port N] | off | pair [--scope view|control] | devices | revoke DEVICE_ID]';

const scopeName = (s: RemoteScope): string => (s === RemoteScope.REMOTE_SCOPE_CONTROL ? 'control' : s === RemoteScope.REMOTE_SCOPE_VIEW ? 'view' : 'unknown');

function parseScope(v: string | undefined): RemoteScope {
  if (v === undefined || v === 'view') return RemoteScope.REMOTE_SCOPE_VIEW;
  if (v === 'control') return RemoteScope.REMOTE_SCOPE_CONTROL;
  throw new CliError('--scope takes view (watch only) or control (everything but phone access)');
}

/** Status lines for `lanrage remote`. Pure. */
export function formatRemote(r: RemoteAccess): string[] {
  if (!r.enabled) return ['phone access  off (turn it on with `lanrage remote on [--address IP]`)'];
  return [`phone access  on`, `url           ${r.url}`, `certificate   SHA-256 ${r.certificateSha256}`];
}

/** One line per paired device. Pure. */
export function formatDevices(devices: readonly PairedDevice[]): string[] {
  if (devices.length === 0) return ['no paired devices (pair one with `lanrage remote pair`)'];
  return devices.map((d) => `${d.deviceId}  ${d.name}  ${scopeName(d.scope)}  paired ${d.created?.toISOString() ?? '?'}  last seen ${d.lastSeen?.toISOString() ?? '?'}`);
}

function printRemote(r: RemoteAccess | undefined, ctx: CliContext): void {
  if (!r) throw new CliError('the helper sent no remote access state');
  if (ctx.json) ctx.out(JSON.stringify(r));
  else for (const l of formatRemote(r)) ctx.out(l);
}

export const remoteCommand = serviceCommand({
  name: 'remote',
  usage: 'remote [on [--address IP] [--port N] | off | pair [--scope view|control] | devices | revoke ID]',
  summary: 'phone access: status, turn on/off, make a one-time pairing link, list or revoke phones',
  service: RemoteAccessServiceClient,
  async run(c, call, args, ctx) {
    const [, verb, id] = args.positional;
    switch (verb) {
      case undefined:
      case 'status':
        return printRemote((await call.write<object, GetRemoteAccessResponse>(c.getRemoteAccess, {})).remoteAccess, ctx);
      case 'on':
      case 'off': {
        const req: SetRemoteAccessRequest = { enabled: verb === 'on', listenAddress: verb === 'on' ? flag(args, 'address') ?? '' : '', port: verb === 'on' ? portFlag(args, 'port', 0) : 0 };
        return printRemote((await call.write<SetRemoteAccessRequest, SetRemoteAccessResponse>(c.setRemoteAccess, req)).remoteAccess, ctx);
      }
      case 'pair': {
        const res = await call.write<CreatePairingRequest, CreatePairingResponse>(c.createPairing, { scope: parseScope(flag(args, 'scope')) });
        if (ctx.json) return ctx.out(JSON.stringify(res));
        ctx.out(`open this link on the phone (once, before ${res.expires?.toISOString() ?? '?'}):`);
        ctx.out(`  ${res.link}`);
        ctx.out(`the phone's browser warns about the certificate: check that its SHA-256 is ${res.certificateSha256}`);
        return;
      }
      case 'devices': {
        const res = await call.write<object, ListPairedDevicesResponse>(c.listPairedDevices, {});
        if (ctx.json) return ctx.out(JSON.stringify({ devices: res.devices.map((d) => ({ ...d, scope: scopeName(d.scope) })) }));
        for (const l of formatDevices(res.devices)) ctx.out(l);
        return;
      }
      case 'revoke': {
        if (!id) throw new CliError('usage: lanrage remote revoke DEVICE_ID (the first column of `lanrage remote devices`)');
        await call.write<RevokePairedDeviceRequest, object>(c.revokePairedDevice, { deviceId: id });
        ctx.out(ctx.json ? JSON.stringify({ revoked: id }) : `revoked ${id}: its token no longer works and its open connections are closed`);
        return;
      }
      default:
        throw new CliError(USAGE);
    }
  },
});
