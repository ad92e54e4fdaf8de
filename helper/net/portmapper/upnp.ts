// UPnP IGD for one UDP or TCP port mapping: the SSDP search, the answer, the device description and
// the SOAP calls (GetExternalIPAddress, AddPortMapping, DeletePortMapping). Pure text in, text
// out. Everything the router sends is bounded and scanned with bounded patterns: no XML parser,
// nothing evaluated, and every URL must point at the router that answered.

import { isIPv4 } from 'node:net';

export const SSDP_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
export const IGD_SEARCH_TARGET = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
/** The WAN connection services that can map ports, preferred first. */
export const WAN_SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;
export type WanService = (typeof WAN_SERVICES)[number];

export const MAX_SSDP_ANSWER = 2048;
export const MAX_DESCRIPTION = 64 * 1024;
export const MAX_SOAP_ANSWER = 16 * 1024;

export function encodeMSearch(searchTarget = IGD_SEARCH_TARGET, mxSeconds = 1): Buffer {
  return Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDRESS}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: ${mxSeconds}\r\nST: ${searchTarget}\r\n\r\n`,
    'latin1',
  );
}

export interface SsdpAnswer {
  location: URL;
  st: string;
  server: string;
}

/**
 * An M-SEARCH answer from `fromIp`. Its LOCATION must be plain http on `fromIp` itself (the device
 * that answered), so that a LAN host cannot steer us to a third address.
 */
export function parseSsdpAnswer(b: Buffer, fromIp: string): SsdpAnswer {
  if (b.length > MAX_SSDP_ANSWER) throw new Error(`SSDP: ${b.length}-byte answer`);
  const lines = b.toString('latin1').split('\r\n');
  if (!/^HTTP\/1\.[01] 200 OK$/i.test(lines[0] ?? '')) throw new Error('SSDP: not a 200 answer');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1, 40)) {
    const m = /^([A-Za-z0-9.-]{1,40}):[ \t]*(.{0,300})$/.exec(line);
    if (m) headers.set(m[1]!.toLowerCase(), m[2]!.trim());
  }
  const st = headers.get('st') ?? '';
  if (!/^urn:schemas-upnp-org:device:InternetGatewayDevice:[12]$/.test(st)) throw new Error(`SSDP: not an IGD (${JSON.stringify(st.slice(0, 80))})`);
  const location = gatewayUrl(headers.get('location') ?? '', undefined, fromIp);
  return { location, st, server: (headers.get('server') ?? '').slice(0, 120) };
}

/**
 * `text` resolved against `base`; must be http://<expectIp>[:port]/..., no credentials. The only
 * URLs this module hands out for requests come from here.
 */
export function gatewayUrl(text: string, base: URL | undefined, expectIp: string): URL {
  if (text.length === 0 || text.length > 512 || /[\s<>"]/.test(text)) throw new Error('UPnP: unusable URL');
  let u: URL;
  try {
    u = base ? new URL(text, base) : new URL(text);
  } catch {
    throw new Error('UPnP: unusable URL');
  }
  if (u.protocol !== 'http:' || u.username !== '' || u.password !== '') throw new Error('UPnP: only plain http URLs without credentials');
  if (!isIPv4(u.hostname) || u.hostname !== expectIp) throw new Error(`UPnP: URL points at ${u.hostname}, not the gateway ${expectIp}`);
  return u;
}

export interface IgdControl {
  serviceType: WanService;
  controlUrl: URL;
}

/** Un-escapes the five predefined XML entities (device descriptions use nothing else). */
function xmlText(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e] ?? '');
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? '');
}

/** The first WAN connection service of a device description (by preference), control URL checked. */
export function parseDescription(xml: string, location: URL, gatewayIp: string): IgdControl {
  if (xml.length > MAX_DESCRIPTION) throw new Error(`UPnP: ${xml.length}-character description`);
  const baseMatch = /<URLBase>\s*([^<]{1,512}?)\s*<\/URLBase>/.exec(xml);
  const base = baseMatch ? gatewayUrl(xmlText(baseMatch[1]!), undefined, gatewayIp) : location;
  const found = new Map<string, string>();
  for (const m of xml.matchAll(/<service>([\s\S]{0,4000}?)<\/service>/g)) {
    const body = m[1]!;
    const type = /<serviceType>\s*([^<]{1,200}?)\s*<\/serviceType>/.exec(body)?.[1];
    const ctl = /<controlURL>\s*([^<]{1,512}?)\s*<\/controlURL>/.exec(body)?.[1];
    if (type && ctl && !found.has(type)) found.set(type, xmlText(ctl));
  }
  for (const serviceType of WAN_SERVICES) {
    const ctl = found.get(serviceType);
    if (ctl !== undefined) return { serviceType, controlUrl: gatewayUrl(ctl, base, gatewayIp) };
  }
  throw new Error('UPnP: the gateway offers no WANIPConnection / WANPPPConnection service');
}

export interface SoapRequest {
  soapAction: string;
  body: string;
}

export function encodeSoap(serviceType: WanService, action: string, args: ReadonlyArray<readonly [string, string | number]>): SoapRequest {
  if (!/^[A-Za-z]{1,40}$/.test(action)) throw new Error(`bad SOAP action ${action}`);
  const params = args.map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`).join('');
  return {
    soapAction: `"${serviceType}#${action}"`,
    body:
      '<?xml version="1.0"?>\r\n' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
      `<s:Body><u:${action} xmlns:u="${serviceType}">${params}</u:${action}></s:Body></s:Envelope>\r\n`,
  };
}

export type UpnpTransport = 'udp' | 'tcp';

export function encodeAddPortMapping(serviceType: WanService, m: { externalPort: number; internalPort: number; internalClient: string; leaseSeconds: number; description: string; transport?: UpnpTransport }): SoapRequest {
  if (!isIPv4(m.internalClient)) throw new Error('the internal client must be an IPv4 address');
  // 0 would ask for a permanent mapping that outlives us if we die: never.
  if (!Number.isInteger(m.leaseSeconds) || m.leaseSeconds < 1 || m.leaseSeconds > 604800) throw new RangeError(`bad lease ${m.leaseSeconds}`);
  return encodeSoap(serviceType, 'AddPortMapping', [
    ['NewRemoteHost', ''],
    ['NewExternalPort', m.externalPort],
    ['NewProtocol', (m.transport ?? 'udp').toUpperCase()],
    ['NewInternalPort', m.internalPort],
    ['NewInternalClient', m.internalClient],
    ['NewEnabled', 1],
    ['NewPortMappingDescription', m.description],
    ['NewLeaseDuration', m.leaseSeconds],
  ]);
}

export function encodeDeletePortMapping(serviceType: WanService, externalPort: number, transport: UpnpTransport = 'udp'): SoapRequest {
  return encodeSoap(serviceType, 'DeletePortMapping', [
    ['NewRemoteHost', ''],
    ['NewExternalPort', externalPort],
    ['NewProtocol', transport.toUpperCase()],
  ]);
}

export function encodeGetExternalIp(serviceType: WanService): SoapRequest {
  return encodeSoap(serviceType, 'GetExternalIPAddress', []);
}

/** UPnP error codes we act on. */
export const UPNP_CONFLICT = 718;
export const UPNP_ONLY_PERMANENT = 725;

export class UpnpError extends Error {
  constructor(readonly code: number, description: string) {
    super(`UPnP error ${code}: ${description}`);
  }
}

/**
 * A SOAP answer → its out-arguments (simple elements of the `<u:ActionResponse>`), or UpnpError
 * for a SOAP fault. `httpStatus` 500 carries the fault.
 */
export function parseSoapAnswer(httpStatus: number, xml: string, action: string): Map<string, string> {
  if (xml.length > MAX_SOAP_ANSWER) throw new Error(`UPnP: ${xml.length}-character SOAP answer`);
  const code = /<(?:[A-Za-z0-9]{1,20}:)?errorCode>\s*(\d{1,4})\s*</.exec(xml)?.[1];
  if (code !== undefined) {
    const desc = /<(?:[A-Za-z0-9]{1,20}:)?errorDescription>([^<]{0,200})</.exec(xml)?.[1] ?? '';
    throw new UpnpError(Number(code), xmlText(desc));
  }
  if (httpStatus !== 200) throw new Error(`UPnP: HTTP ${httpStatus}`);
  const resp = new RegExp(`<(?:[A-Za-z0-9]{1,20}:)?${action}Response[^>]{0,300}>([\\s\\S]{0,8000}?)</(?:[A-Za-z0-9]{1,20}:)?${action}Response>`).exec(xml);
  if (!resp) {
    // Actions without out-arguments may answer with an empty element: <u:AddPortMappingResponse .../>.
    if (new RegExp(`<(?:[A-Za-z0-9]{1,20}:)?${action}Response[^>]{0,300}/>`).test(xml)) return new Map();
    throw new Error(`UPnP: no ${action}Response`);
  }
  const out = new Map<string, string>();
  for (const m of resp[1]!.matchAll(/<([A-Za-z][A-Za-z0-9]{0,40})>([^<]{0,300})<\/\1>/g)) out.set(m[1]!, xmlText(m[2]!).trim());
  // Empty elements (<NewExternalIPAddress/>, <X></X>) are present but empty.
  for (const m of resp[1]!.matchAll(/<([A-Za-z][A-Za-z0-9]{0,40})\s*\/>/g)) if (!out.has(m[1]!)) out.set(m[1]!, '');
  return out;
}
