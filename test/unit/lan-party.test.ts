import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../helper/core/log.js';
import type { GroupTarget } from '../../helper/lan/capture.js';
import type { InjectDatagram } from '../../helper/lan/inject.js';
import type { LanRelayIo, RelayIoHandlers } from '../../helper/lan/linux.js';
import { lanPorts, planLan, PartyLan, wantedLan, WELL_KNOWN_LAN_PORTS, type LanWanted } from '../../helper/lan/party-lan.js';
import { DEFAULT_GROUPS, DEFAULT_LAN_RELAY_PORT } from '../../helper/lan/relay.js';

const logLines: string[] = [];
const log = createLogger({ test: 'lan-party' }, (l) => void logLines.push(l));
const SELF = { virtualIp: '10.66.0.1', tunnelInterface: 'lr0' };
const BUILT_IN = WELL_KNOWN_LAN_PORTS.map((p) => p.port).sort((a, b) => a - b);

class FakeIo implements LanRelayIo {
  h: RelayIoHandlers | undefined;
  targets: number[][] = [];
  sent: string[] = [];
  closed = false;
  constructor(private readonly failStart: boolean) {}
  async start(h: RelayIoHandlers): Promise<void> {
    if (this.failStart) throw new Error('bind EADDRINUSE 10.66.0.1:8668');
    this.h = h;
  }
  async setTargets(ports: readonly number[], _groups: readonly GroupTarget[]): Promise<void> {
    this.targets.push([...ports]);
  }
  send(_msg: Buffer, ip: string): void {
    this.sent.push(ip);
  }
  async inject(_d: InjectDatagram): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function harness(initial: { broadcastEnabled: boolean; broadcastPorts: number[] } = { broadcastEnabled: true, broadcastPorts: [] }) {
  const settings = { ...initial };
  const ios: FakeIo[] = [];
  let failNext = false;
  const lan = new PartyLan({
    log,
    settings: () => settings,
    publish: () => undefined,
    io: () => {
      const io = new FakeIo(failNext);
      ios.push(io);
      return io;
    },
    removeStale: async () => false,
  });
  return { lan, settings, ios, failStarts: (v: boolean) => (failNext = v) };
}

function capture(io: FakeIo, srcPort: number): void {
  io.h!.onCaptured({ srcIp: '192.0.2.10', srcPort, dst: '255.255.255.255', dstPort: 27960, payload: Buffer.from(`DISCOVER ${srcPort}`) });
}

test('planLan: start when wanted, stop when not, restart for a new address or interface, retarget for new ports', () => {
  const w = (over: Partial<LanWanted> = {}): LanWanted => ({ self: SELF, ports: [27015], groups: [...DEFAULT_GROUPS], ...over });
  assert.equal(planLan(undefined, undefined), 'none');
  assert.equal(planLan(undefined, w()), 'start');
  assert.equal(planLan(w(), undefined), 'stop');
  assert.equal(planLan(w(), w()), 'none');
  assert.equal(planLan(w(), w({ self: { ...SELF, virtualIp: '10.66.0.9' } })), 'restart');
  assert.equal(planLan(w(), w({ self: { ...SELF, tunnelInterface: 'lr1' } })), 'restart');
  assert.equal(planLan(w(), w({ ports: [27015, 4000] })), 'retarget');
  assert.equal(planLan(w(), w({ groups: ['224.0.0.251:5353'] })), 'retarget');
});

test('wantedLan and lanPorts: off outside a party or when disabled; built-in game ports plus the user\'s, never the relay port', () => {
  assert.equal(wantedLan(null, true, []), undefined);
  assert.equal(wantedLan(SELF, false, [4000]), undefined);
  assert.deepEqual(wantedLan(SELF, true, [])?.ports, BUILT_IN);
  assert.deepEqual(wantedLan(SELF, true, [])?.groups, [...DEFAULT_GROUPS]);
  assert.deepEqual(lanPorts([40000, 27015, 1]), [1, ...BUILT_IN, 40000]);
  assert.ok(!lanPorts([DEFAULT_LAN_RELAY_PORT]).includes(DEFAULT_LAN_RELAY_PORT));
  for (const p of WELL_KNOWN_LAN_PORTS) assert.ok(p.game.length > 5 && p.port !== DEFAULT_LAN_RELAY_PORT);
});

test('PartyLan follows the party: starts with the tunnel, takes new peers without a restart, stops on leave', async () => {
  const { lan, ios } = harness();
  await lan.start();
  await lan.setParty(null, []);
  assert.equal(ios.length, 0, 'nothing runs outside a party');
  assert.equal(lan.stats().enabled, false);

  await lan.setParty(SELF, ['10.66.0.2']);
  assert.equal(ios.length, 1);
  assert.deepEqual(ios[0]!.targets.at(-1), BUILT_IN);
  assert.equal(lan.stats().enabled, true);
  capture(ios[0]!, 5001);
  assert.deepEqual(ios[0]!.sent, ['10.66.0.2']);

  await lan.setParty(SELF, ['10.66.0.2', '10.66.0.3']);
  assert.equal(ios.length, 1, 'a new member is not a restart');
  capture(ios[0]!, 5002);
  assert.deepEqual(ios[0]!.sent.slice(1).sort(), ['10.66.0.2', '10.66.0.3']);
  const s = lan.stats();
  assert.equal(s.captured, 2);
  assert.equal(s.forwarded, 3);

  await lan.setParty({ ...SELF, virtualIp: '10.66.0.7' }, ['10.66.0.2']);
  assert.equal(ios.length, 2, 'a new virtual IP restarts the relay');
  assert.equal(ios[0]!.closed, true);
  assert.equal(lan.stats().forwarded, 3, 'counters survive a restart');

  await lan.setParty(null, []);
  assert.equal(ios[1]!.closed, true);
  assert.equal(lan.stats().enabled, false);
  assert.equal(lan.stats().captured, 2);
  await lan.close();
});

test('PartyLan applies settings live: off stops, on starts again, new ports retarget the same relay', async () => {
  const { lan, ios, settings } = harness();
  await lan.start();
  await lan.setParty(SELF, ['10.66.0.2']);
  settings.broadcastEnabled = false;
  await lan.settingsChanged();
  assert.equal(ios[0]!.closed, true);
  assert.equal(lan.stats().enabled, false);
  assert.deepEqual(lan.stats().ports, []);

  settings.broadcastEnabled = true;
  await lan.settingsChanged();
  assert.equal(ios.length, 2);
  assert.equal(lan.stats().enabled, true);

  settings.broadcastPorts = [47777];
  await lan.settingsChanged();
  assert.equal(ios.length, 2, 'new ports need no new relay');
  assert.deepEqual(ios[1]!.targets.at(-1), [...BUILT_IN, 47777]);
  assert.ok(lan.stats().ports.includes(47777));
  await lan.settingsChanged();
  assert.equal(ios[1]!.targets.length, 2, 'an unrelated settings change does nothing');
  await lan.close();
  assert.equal(ios[1]!.closed, true);
});

test('PartyLan: a relay that cannot start is reported with what to do, never thrown, and tried again at the next change', async () => {
  const { lan, ios, failStarts } = harness();
  await lan.start();
  failStarts(true);
  await lan.setParty(SELF, ['10.66.0.2']);
  const s = lan.stats();
  assert.equal(s.enabled, false);
  assert.match(s.problem, /port 8668 .* taken by another program/);
  assert.ok(logLines.some((l) => /LAN discovery could not start/.test(l)));
  failStarts(false);
  await lan.setParty(SELF, ['10.66.0.2', '10.66.0.3']);
  assert.equal(ios.length, 2);
  assert.equal(lan.stats().enabled, true);
  assert.equal(lan.stats().problem, '');
  await lan.close();
  // After close nothing starts again.
  await lan.setParty(SELF, ['10.66.0.2']);
  assert.equal(ios.length, 2);
});

test('PartyLan publishes stats only when they changed, at most once per tick', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const published: number[] = [];
  const ios: FakeIo[] = [];
  const lan = new PartyLan({
    log,
    settings: () => ({ broadcastEnabled: true, broadcastPorts: [] }),
    publish: (s) => void published.push(s.captured),
    io: () => {
      const io = new FakeIo(false);
      ios.push(io);
      return io;
    },
    removeStale: async () => false,
  });
  await lan.start();
  t.mock.timers.tick(1000);
  assert.deepEqual(published, [], 'nothing changed yet');
  await lan.setParty(SELF, ['10.66.0.2']);
  for (let i = 0; i < 5; i++) capture(ios[0]!, 6000 + i);
  t.mock.timers.tick(1000);
  assert.deepEqual(published, [5], 'one event for five datagrams');
  t.mock.timers.tick(3000);
  assert.deepEqual(published, [5]);
  // After a quiet spell (no timer runs then), the next datagram is published within the interval.
  capture(ios[0]!, 7000);
  t.mock.timers.tick(999);
  assert.deepEqual(published, [5]);
  t.mock.timers.tick(1);
  assert.deepEqual(published, [5, 6], 'published one interval after the change');
  await lan.close();
});
