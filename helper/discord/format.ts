import type { DiscordEvent } from './events.js';

// Turns a burst of events into as few Discord messages as possible, in order, losing nothing:
// consecutive events of the same kind become one line ("Alice, Bob and Carol joined"), lines
// are packed into messages of at most Discord's 2000 characters.

export const MAX_CONTENT = 2000;
/** Names on one merged line; a bigger group continues on the next line (no name is left out). */
const MAX_NAMES_PER_LINE = 20;

/** Names come from other players: neutralise Discord markdown and mentions. */
export function escapeText(s: string): string {
  return s
    .replace(/[\\*_~`|>#[\]()-]/g, (c) => `\\${c}`)
    .replace(/@/g, '@\u200b')
    .replace(/[\r\n]+/g, ' ');
}

function list(names: string[]): string {
  const shown = names.map((n) => `**${escapeText(n)}**`);
  if (shown.length <= 1) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}`;
}

const verb = (n: number, one: string, many: string): string => (n === 1 ? one : many);

const REASON: Record<string, string> = { left: 'left', kicked: 'was removed from', 'timed-out': 'timed out of', unknown: 'left' };

/** Events that can share one line: same kind, and same party or game where that is in the text. */
function groupKey(e: DiscordEvent): string | null {
  switch (e.kind) {
    case 'player-joined':
    case 'player-lost':
    case 'player-back':
      return `${e.kind}\u0000${e.party}`;
    case 'player-left':
      return `${e.kind}\u0000${e.party}\u0000${e.reason}`;
    case 'game-started':
    case 'game-stopped':
      return `${e.kind}\u0000${e.game}`;
    default:
      return null;
  }
}

function line(group: DiscordEvent[]): string {
  const e = group[0]!;
  const n = group.length;
  const who = (): string[] => group.map((x) => ('player' in x ? x.player : ''));
  switch (e.kind) {
    case 'party-created':
      return `🎉 **${escapeText(e.by)}** started the LANrage party **${escapeText(e.party)}**`;
    case 'party-closed':
      return `👋 **${escapeText(e.by)}** left the LANrage party **${escapeText(e.party)}**`;
    case 'player-joined':
      return `➕ ${list(who())} ${verb(n, 'joined', 'joined')} **${escapeText(e.party)}**`;
    case 'player-left':
      return `➖ ${list(who())} ${REASON[e.reason] ?? 'left'} **${escapeText(e.party)}**`;
    case 'player-lost':
      return `⚠️ ${list(who())} ${verb(n, 'lost', 'lost')} the connection to **${escapeText(e.party)}**`;
    case 'player-back':
      return `✅ ${list(who())} ${verb(n, 'is', 'are')} back in **${escapeText(e.party)}**`;
    case 'game-started':
      return `🎮 ${list(who())} started playing **${escapeText(e.game)}**`;
    case 'game-stopped':
      return `⏹️ ${list(who())} stopped playing **${escapeText(e.game)}**`;
    case 'server-up':
      return `🟢 ${escapeText(e.game)} server **${escapeText(e.name)}** is up at \`${e.address.replace(/`/g, '')}\` (${e.players}/${e.maxPlayers} players)`;
    case 'server-down':
      return `🔴 ${escapeText(e.game)} server **${escapeText(e.name)}** at \`${e.address.replace(/`/g, '')}\` is down`;
    case 'connected':
      return `🔗 LANrage on **${escapeText(e.device)}** will post party news in this channel`;
  }
}

/** Lines for a burst, in order; consecutive events that share a group become one line. */
export function burstLines(events: readonly DiscordEvent[]): string[] {
  const lines: string[] = [];
  let group: DiscordEvent[] = [];
  let key: string | null = null;
  for (const e of events) {
    const k = groupKey(e);
    if (group.length > 0 && group.length < MAX_NAMES_PER_LINE && k !== null && k === key) {
      group.push(e);
      continue;
    }
    if (group.length > 0) lines.push(line(group));
    group = [e];
    key = k;
  }
  if (group.length > 0) lines.push(line(group));
  return lines;
}

/** Packs lines into messages of at most MAX_CONTENT characters (a longer line is cut). */
export function packLines(lines: readonly string[], max = MAX_CONTENT): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of lines) {
    const l = raw.length > max ? `${raw.slice(0, max - 1)}…` : raw;
    if (cur === '') cur = l;
    else if (cur.length + 1 + l.length <= max) cur += `\n${l}`;
    else {
      out.push(cur);
      cur = l;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

export const formatBurst = (events: readonly DiscordEvent[]): string[] => packLines(burstLines(events));
