import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GameProfile } from './profile.js';
import { checkProfile } from './validate-profile.js';

// The built-in profiles live in a JSON data file in the repository (helper/games/profiles.json),
// read at start and checked entry by entry. A broken file stops the helper with an error that
// names the file, the entry and the field: a silently skipped game would look like a detection bug.

export const BUILTIN_PROFILES_PATH = fileURLToPath(new URL('../../../helper/games/profiles.json', import.meta.url));

export class ProfileDataError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(`game profile data ${file} is invalid:\n  ${problems.join('\n  ')}`);
    this.name = 'ProfileDataError';
  }
}

/** Checks a parsed data file ({version: 1, profiles: [...]}); `file` only labels the errors. */
export function parseProfileData(data: unknown, file: string): GameProfile[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ProfileDataError(file, ['the file must hold an object {"version": 1, "profiles": [...]}']);
  const d = data as Record<string, unknown>;
  if (d.version !== 1) throw new ProfileDataError(file, [`version: ${JSON.stringify(d.version)} is not a version this helper reads (1)`]);
  if (!Array.isArray(d.profiles)) throw new ProfileDataError(file, ['profiles: must be a list']);
  const problems: string[] = [];
  const out: GameProfile[] = [];
  const seen = new Map<string, number>();
  d.profiles.forEach((entry: unknown, i: number) => {
    const rawId = typeof entry === 'object' && entry !== null && typeof (entry as { id?: unknown }).id === 'string' ? (entry as { id: string }).id : undefined;
    const label = `entry ${i}${rawId !== undefined ? ` ("${rawId.slice(0, 64)}")` : ''}`;
    const r = checkProfile(entry, { custom: false });
    if (!r.ok) {
      for (const e of r.errors) problems.push(`${label}: ${e}`);
      return;
    }
    const prev = seen.get(r.profile.id);
    if (prev !== undefined) problems.push(`${label}: id: "${r.profile.id}" is already used by entry ${prev}`);
    seen.set(r.profile.id, i);
    out.push(r.profile);
  });
  if (problems.length > 0) throw new ProfileDataError(file, problems);
  return out;
}

export function loadProfileFile(file: string = BUILTIN_PROFILES_PATH): GameProfile[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProfileDataError(file, [`cannot read it: ${(err as Error).message}`]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProfileDataError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  return parseProfileData(data, file);
}
