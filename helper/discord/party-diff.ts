import { MemberPresence, type Party, type PartyMember } from '../gen/lanrage/v1/party.js';
import type { DiscordEvent } from './events.js';

// Party news from two consecutive party snapshots (the helper's `party` live events).
//
// Who posts: every member may have connected the same channel's webhook, and each helper sees
// every membership change. So membership news is posted by the party host's helper only: one
// message per change in the channel, not one per member. (The host's helper is always running
// while the party exists; if the host has no webhook, membership is not announced.)

export type LeftReasons = ReadonlyMap<string, 'left' | 'kicked' | 'timed-out' | 'unknown'>;

const selfOf = (p: Party | undefined): PartyMember | undefined => p?.members.find((m) => m.isSelf);
const away = (m: PartyMember): boolean => m.presence === MemberPresence.MEMBER_PRESENCE_AWAY;

export function diffParty(before: Party | undefined, after: Party | undefined, reasons: LeftReasons = new Map()): DiscordEvent[] {
  const out: DiscordEvent[] = [];
  const sameParty = before !== undefined && after !== undefined && before.id === after.id;
  if (before && !sameParty) {
    const self = selfOf(before);
    if (self?.isHost) out.push({ kind: 'party-closed', party: before.name, by: self.name });
  }
  if (after && !sameParty) {
    const self = selfOf(after);
    // A party we host alone has just been created; a bigger one was resumed or joined, and its
    // host's helper has already told the channel about everybody in it.
    if (self?.isHost && after.members.length === 1) out.push({ kind: 'party-created', party: after.name, by: self.name });
    return out;
  }
  if (!sameParty || !selfOf(after)?.isHost) return out;
  const old = new Map(before.members.map((m) => [m.deviceId, m]));
  const now = new Map(after.members.map((m) => [m.deviceId, m]));
  for (const m of before.members) {
    if (!now.has(m.deviceId) && !m.isSelf) out.push({ kind: 'player-left', party: after.name, player: m.name, reason: reasons.get(m.deviceId) ?? 'unknown' });
  }
  for (const m of after.members) {
    if (m.isSelf) continue;
    const was = old.get(m.deviceId);
    if (!was) out.push({ kind: 'player-joined', party: after.name, player: m.name });
    else if (!away(was) && away(m)) out.push({ kind: 'player-lost', party: after.name, player: m.name });
    else if (away(was) && !away(m)) out.push({ kind: 'player-back', party: after.name, player: m.name });
  }
  return out;
}
