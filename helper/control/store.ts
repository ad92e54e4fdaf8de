import type { NatHints } from '../gen/lanrage/control/v1/control.js';

// What the control server keeps across restarts, behind an interface so that a deployment that
// outgrows one machine can move it to another database. Presence and session tokens are not
// here: they live in memory and are rebuilt when helpers reconnect.

export interface DeviceRecord {
  id: string;
  identityKey: Buffer;
  name: string;
  wgKey: Buffer;
  discoKey: Buffer;
  /** The device's latest endpoint candidates and NAT hints; they follow it from party to party. */
  candidates: string[];
  nat: NatHints;
  /** The device's TURN relayed addresses ("ip:port"), published like candidates. */
  relayed: string[];
  createdAt: number;
  updatedAt: number;
}

export interface PartyRecord {
  id: string;
  name: string;
  /** SHA-256 of the invite secret; the secret itself is never stored. */
  secretHash: Buffer;
  hostDeviceId: string;
  networkCidr: string;
  createdAt: number;
}

export interface MemberRecord {
  partyId: string;
  deviceId: string;
  virtualIp: string;
  joinedAt: number;
}

/** A member joined with its device's name, keys and endpoints, as the party sees it. */
export interface MemberView extends MemberRecord {
  name: string;
  wgKey: Buffer;
  discoKey: Buffer;
  candidates: string[];
  nat: NatHints;
  relayed: string[];
}

export interface ControlStore {
  /** Runs fn atomically; nested calls join the outer transaction. */
  transaction<T>(fn: () => T): T;

  device(id: string): DeviceRecord | undefined;
  /** The device that registered this WireGuard or disco key, if any. */
  deviceByKey(kind: 'wg' | 'disco', key: Buffer): string | undefined;
  /** Inserts the device, or updates its name and keys (endpoints are kept). */
  saveDevice(d: DeviceRecord): void;
  setDeviceEndpoints(deviceId: string, candidates: string[], nat: NatHints, relayed: string[]): void;

  party(id: string): PartyRecord | undefined;
  insertParty(p: PartyRecord): void;
  setPartyHost(partyId: string, deviceId: string): void;
  /** Deletes the party with its members and allocations. */
  deleteParty(partyId: string): void;

  /** Oldest member first (join time, then insertion order). */
  members(partyId: string): MemberView[];
  membership(deviceId: string): MemberRecord | undefined;
  allMemberships(): MemberRecord[];
  insertMember(m: MemberRecord): void;
  deleteMember(deviceId: string): void;

  /** Every address the party remembers: device → virtual IP. */
  allocations(partyId: string): Map<string, string>;
  /** Gives `ip` to `deviceId`, taking it from any former member that had it. */
  setAllocation(partyId: string, deviceId: string, ip: string): void;

  close(): void;
}
