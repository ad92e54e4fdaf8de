import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { createLogger } from '../../helper/core/log.js';
import { toProtoNatReport } from '../../helper/api/network-service.js';
import { natReportJson } from '../../helper/cli/netcheck.js';
import { PortMappingProtocol } from '../../helper/gen/lanrage/v1/network.js';
import { Netchecker } from '../../helper/net/netchecker.js';
import type { Gateway } from '../../helper/net/portmapper/gateway.js';
import { PortMapper, type PortMapProtocol } from '../../helper/net/portmapper/portmapper.js';
import type { ExchangeOptions, HttpAnswer, PortMapIo } from '../../helper/net/portmapper/transport.js';

// PortMapper against an in-memory router that speaks PCP, NAT-PMP and UPnP (each can be off).
// This fake is the only PCP server the renewal/deletion logic meets in unit tests; the lab test
// (test/lab/portmap.test.ts) runs the same code against Debian's miniupnpd.

const GW: Gateway = { ip: '192.168.1.1', iface: 'eth0', localIp: '192.168.1.20', prefix: 24 };
const quiet = createLogger({}, () => undefined);
const settle = async (): Promise<void> => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
};

class FakeRouter implements PortMapIo {
  sent = 0;
  on = { pcp: true, natpmp: true, upnp: true };
  externalIp = '203.0.113.9';
  /** Longest lifetime granted (PCP / NAT-PMP). */
  maxLifetime = 86400;
  /** What happened, in order: "pcp map 41641→41641 7200", "upnp add 41641 7200", ... */
  events: string[] = [];
  /** UPnP: external ports already taken by someone else. */
  taken = new Set<number>();
  mappings = new Map<string, number>();

  exchange<T>(localIp: string, ip: string, port: number, msg: Buffer, accept: (b: Buffer) => T | undefined, _o: ExchangeOptions): Promise<T | null> {
    this.sent++;
    assert.equal(ip, GW.ip);
    assert.equal(port, 5351);
    assert.equal(localIp, GW.localIp);
    const a = this.udp(msg);
    const v = a ? accept(a) : undefined;
    return Promise.resolve(v === undefined ? null : v);
  }

  private udp(m: Buffer): Buffer | null {
    if (m[0] === 2) {
      if (!this.on.pcp) return null;
      const op = m[1]!;
      const h = Buffer.alloc(24);
      h[0] = 2;
      h[1] = 0x80 | op;
      if (op === 0) return h;
      const life = Math.min(m.readUInt32BE(4), this.maxLifetime);
      const internal = m.readUInt16BE(40);
      const ext = m.readUInt16BE(42) || internal;
      this.events.push(`pcp map ${internal}→${ext} ${life} nonce=${m.subarray(24, 36).toString('hex').slice(0, 6)}`);
      if (life === 0) this.mappings.delete(`pcp:${ext}`);
      else this.mappings.set(`pcp:${ext}`, internal);
      h.writeUInt32BE(life, 4);
      const body = Buffer.from(m.subarray(24, 60));
      body.writeUInt16BE(ext, 18);
      Buffer.from(`00000000000000000000ffff${this.externalIp.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}`, 'hex').copy(body, 20);
      return Buffer.concat([h, body]);
    }
    if (m[0] === 0) {
      if (!this.on.natpmp) return null;
      if (m[1] === 0) return Buffer.from([0, 128, 0, 0, 0, 0, 0, 1, ...this.externalIp.split('.').map(Number)]);
      const internal = m.readUInt16BE(4);
      const life = Math.min(m.readUInt32BE(8), this.maxLifetime);
      const ext = m.readUInt16BE(6) || internal;
      this.events.push(`pmp map ${internal}→${life === 0 ? 0 : ext} ${life}`);
      const r = Buffer.alloc(16);
      r[1] = 129;
      r.writeUInt16BE(internal, 8);
      r.writeUInt16BE(life === 0 ? 0 : ext, 10);
      r.writeUInt32BE(life, 12);
      return r;
    }
    return null;
  }

  ssdp<T>(localIp: string, fromIp: string, _msg: Buffer, accept: (b: Buffer) => T | undefined): Promise<T | null> {
    this.sent++;
    if (!this.on.upnp) return Promise.resolve(null);
    assert.equal(fromIp, GW.ip);
    const v = accept(Buffer.from(`HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://192.168.1.1:5000/desc.xml\r\n\r\n`));
    return Promise.resolve(v === undefined ? null : v);
  }

  http(method: 'GET' | 'POST', url: URL, o: { headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
    assert.equal(url.hostname, GW.ip);
    if (method === 'GET') {
      return Promise.resolve({
        status: 200,
        body: '<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>',
      });
    }
    const action = /#(\w+)"$/.exec(o.headers?.SOAPAction ?? '')?.[1];
    const arg = (k: string) => new RegExp(`<${k}>([^<]*)</${k}>`).exec(o.body ?? '')?.[1] ?? '';
    const ok = (inner = '') => ({ status: 200, body: `<s:Envelope><s:Body><u:${action}Response xmlns:u="x">${inner}</u:${action}Response></s:Body></s:Envelope>` });
    if (action === 'GetExternalIPAddress') return Promise.resolve(ok(`<NewExternalIPAddress>${this.externalIp}</NewExternalIPAddress>`));
    if (action === 'AddPortMapping') {
      const ext = Number(arg('NewExternalPort'));
      this.events.push(`upnp add ${ext} ${arg('NewLeaseDuration')} ${arg('NewInternalClient')}`);
      if (this.taken.has(ext)) return Promise.resolve({ status: 500, body: '<s:Fault><detail><UPnPError><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>' });
      this.mappings.set(`upnp:${ext}`, Number(arg('NewInternalPort')));
      return Promise.resolve(ok());
    }
    if (action === 'DeletePortMapping') {
      this.events.push(`upnp delete ${arg('NewExternalPort')}`);
      this.mappings.delete(`upnp:${arg('NewExternalPort')}`);
      return Promise.resolve(ok());
    }
    return Promise.resolve({ status: 500, body: '' });
  }
}

function setup(o: { protocols?: PortMapProtocol[]; lease?: number } = {}) {
  const router = new FakeRouter();
  const clock = new ManualClock();
  const changes: Array<string | null> = [];
  const pm = new PortMapper({
    internalPort: () => 41641,
    onChange: (e) => changes.push(e),
    log: quiet,
    gateway: () => GW,
    io: router,
    clock,
    ...(o.protocols ? { protocols: o.protocols } : {}),
    ...(o.lease ? { leaseSeconds: o.lease } : {}),
  });
  return { router, clock, changes, pm };
}

test('PCP first when everything answers; renewed at half the granted lifetime with the same nonce; deleted on stop', async () => {
  const { router, clock, changes, pm } = setup();
  router.maxLifetime = 20;
  pm.start();
  clock.advance(0);
  await settle();
  assert.deepEqual(changes, ['203.0.113.9:41641']);
  assert.deepEqual(pm.mapped(), { protocol: 'pcp', external: '203.0.113.9:41641', internalPort: 41641, lifetimeSeconds: 20 });
  assert.deepEqual(pm.answered(), ['pcp', 'nat-pmp', 'upnp']);
  assert.equal(router.events.length, 1);
  assert.match(router.events[0]!, /^pcp map 41641→41641 20 /);
  clock.advance(9_000);
  await settle();
  assert.equal(router.events.length, 1, 'not renewed before half the lifetime');
  clock.advance(1_000);
  await settle();
  assert.equal(router.events.length, 2);
  assert.equal(router.events[1], router.events[0], 'renewal: same port, same nonce');
  assert.deepEqual(changes, ['203.0.113.9:41641'], 'a renewal is not a change');
  await pm.stop();
  assert.match(router.events.at(-1)!, /^pcp map 41641→41641 0 /);
  assert.equal(router.events.at(-1)!.split('nonce=')[1], router.events[0]!.split('nonce=')[1]);
  assert.deepEqual(changes, ['203.0.113.9:41641', null]);
  assert.equal(router.mappings.size, 0);
  clock.advance(60_000);
  await settle();
  assert.equal(router.events.length, 3, 'nothing after stop');
});

test('NAT-PMP when PCP is silent; UPnP when both are (a lease, never permanent); UPnP port conflicts move to another port', async () => {
  {
    const { router, clock, changes, pm } = setup();
    router.on.pcp = false;
    pm.start();
    clock.advance(0);
    await settle();
    assert.deepEqual(changes, ['203.0.113.9:41641']);
    assert.equal(pm.mapped()?.protocol, 'nat-pmp');
    assert.deepEqual(router.events, ['pmp map 41641→41641 7200']);
    await pm.stop();
    assert.deepEqual(router.events, ['pmp map 41641→41641 7200', 'pmp map 41641→0 0']);
  }
  {
    const { router, clock, changes, pm } = setup({ lease: 3600 });
    router.on.pcp = false;
    router.on.natpmp = false;
    router.taken.add(41641);
    pm.start();
    clock.advance(0);
    await settle();
    assert.equal(pm.mapped()?.protocol, 'upnp');
    assert.equal(router.events[0], 'upnp add 41641 3600 192.168.1.20');
    const ext = Number(changes[0]!.split(':')[1]);
    assert.notEqual(ext, 41641);
    assert.equal(router.events[1], `upnp add ${ext} 3600 192.168.1.20`);
    clock.advance(1800_000);
    await settle();
    assert.equal(router.events[2], `upnp add ${ext} 3600 192.168.1.20`, 'renewed with the same external port');
    await pm.stop();
    assert.equal(router.events.at(-1), `upnp delete ${ext}`);
    assert.deepEqual(changes, [`203.0.113.9:${ext}`, null]);
  }
});

test('nothing answers: no mapping, retries back off (30 s, 60 s, ...) and stop() sends nothing', async () => {
  const { router, clock, changes, pm } = setup();
  router.on = { pcp: false, natpmp: false, upnp: false };
  pm.start();
  clock.advance(0);
  await settle();
  assert.equal(router.sent, 3, 'one probe: PCP, NAT-PMP, SSDP');
  assert.deepEqual(pm.answered(), []);
  clock.advance(29_000);
  await settle();
  assert.equal(router.sent, 3);
  clock.advance(1_000);
  await settle();
  assert.equal(router.sent, 6);
  clock.advance(59_000);
  await settle();
  assert.equal(router.sent, 6);
  clock.advance(1_000);
  await settle();
  assert.equal(router.sent, 9);
  await pm.stop();
  assert.equal(router.sent, 9);
  assert.deepEqual(changes, []);
});

test('a router whose external address is private (double NAT) gives no candidate', async () => {
  const { router, clock, changes, pm } = setup();
  router.externalIp = '192.168.0.10';
  pm.start();
  clock.advance(0);
  await settle();
  assert.deepEqual(changes, []);
  assert.equal(pm.mapped(), null);
  assert.equal(router.mappings.size, 0, 'what the router granted was given back');
});

test('a router that stops answering: the mapping is kept until it runs out, then withdrawn', async () => {
  const { router, clock, changes, pm } = setup();
  router.maxLifetime = 60;
  router.on.natpmp = false;
  router.on.upnp = false;
  pm.start();
  clock.advance(0);
  await settle();
  assert.deepEqual(changes, ['203.0.113.9:41641']);
  router.on.pcp = false;
  for (let i = 0; i < 12; i++) {
    clock.advance(5_000);
    await settle();
  }
  assert.deepEqual(changes, ['203.0.113.9:41641', null]);
  assert.equal(pm.mapped(), null);
  await pm.stop();
});

test('probe() reuses a recent answer; the port 0 (socket not bound yet) is never mapped', async () => {
  const { router, pm } = setup();
  assert.deepEqual(await pm.probe(), ['pcp', 'nat-pmp', 'upnp']);
  const n = router.sent;
  assert.deepEqual(await pm.probe(), ['pcp', 'nat-pmp', 'upnp']);
  assert.equal(router.sent, n);

  const clock = new ManualClock();
  const r2 = new FakeRouter();
  const changes: Array<string | null> = [];
  const pm2 = new PortMapper({ internalPort: () => 0, onChange: (e) => changes.push(e), log: quiet, gateway: () => GW, io: r2, clock });
  pm2.start();
  clock.advance(0);
  await settle();
  assert.deepEqual(changes, []);
  assert.deepEqual(r2.events, []);
  await pm2.stop();
  assert.throws(() => new PortMapper({ internalPort: () => 1, onChange: () => undefined, log: quiet, leaseSeconds: 0 }), /lease/);
});

test('the NAT report carries the port-mapping protocols that answered (asked beside the STUN tests)', async () => {
  const { router, pm } = setup();
  router.on.upnp = false;
  const nc = new Netchecker({
    stunServers: () => ['203.0.113.2:3478'],
    run: async (s) => ({ udp: 'open', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', publicAddress: '203.0.113.6:1', portPreserved: true, notes: [], at: new Date(), server: s[0]!, localAddresses: [], durationMs: 1 }),
    onReport: () => undefined,
    portMapping: () => pm.probe(),
    log: quiet,
    clock: new ManualClock(),
  });
  const r = await nc.runNow();
  assert.deepEqual(r.portMapping, ['pcp', 'nat-pmp']);
  const proto = toProtoNatReport(r);
  assert.deepEqual(proto.portMapping, [PortMappingProtocol.PORT_MAPPING_PROTOCOL_PCP, PortMappingProtocol.PORT_MAPPING_PROTOCOL_NAT_PMP]);
  assert.deepEqual(natReportJson(proto).portMapping, ['pcp', 'nat-pmp']);
  // A failing probe leaves the list empty; the report still comes.
  const nc2 = new Netchecker({
    stunServers: () => ['203.0.113.2:3478'],
    run: async (s) => ({ udp: 'open', mapping: 'none', filtering: 'endpoint-independent', publicAddress: '203.0.113.6:1', portPreserved: true, notes: [], at: new Date(), server: s[0]!, localAddresses: [], durationMs: 1 }),
    onReport: () => undefined,
    portMapping: () => Promise.reject(new Error('boom')),
    log: quiet,
    clock: new ManualClock(),
  });
  assert.deepEqual((await nc2.runNow()).portMapping, []);
  nc.close();
  nc2.close();
});
