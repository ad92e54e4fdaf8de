import type { Party } from '../gen/lanrage/v1/party.js';
import type { Peer, PingResult } from '../gen/lanrage/v1/peer.js';

// What the local API needs from the party machinery (control client, WireGuard, magicsock).
// The API layer depends on this interface only, so it can be tested without a network.
export interface PartyEngine {
  current(): Party | undefined;
  peers(): Peer[];
  create(name: string): Promise<Party>;
  join(inviteLink: string): Promise<Party>;
  leave(): Promise<void>;
  kick(deviceId: string): Promise<void>;
  /** `peer` is a device id, a name or a virtual IP. */
  ping(peer: string, count: number): Promise<PingResult[]>;
}
