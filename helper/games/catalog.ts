import { EventEmitter } from 'node:events';
import type { GameProfile } from './profile.js';
import { checkProfile } from './validate-profile.js';

// All profiles the helper knows: the built-in data file plus the user's custom profiles (kept by
// a CustomProfileStore, SQLite in the helper). Emits 'changed' after a custom profile is added or
// deleted so that the detector re-matches and the discovery ports follow.

export interface CustomProfileStore {
  list(): GameProfile[];
  /** Must throw if the id exists; the catalog checks first, the store's constraint is the backstop. */
  insert(p: GameProfile): void;
  delete(id: string): boolean;
}

export class MemoryProfileStore implements CustomProfileStore {
  private readonly rows = new Map<string, GameProfile>();
  list(): GameProfile[] {
    return [...this.rows.values()];
  }
  insert(p: GameProfile): void {
    if (this.rows.has(p.id)) throw new Error(`profile ${p.id} exists`);
    this.rows.set(p.id, p);
  }
  delete(id: string): boolean {
    return this.rows.delete(id);
  }
}

export class CatalogError extends Error {
  constructor(
    readonly kind: 'invalid' | 'exists' | 'not-found' | 'full',
    message: string,
  ) {
    super(message);
    this.name = 'CatalogError';
  }
}

export const MAX_CUSTOM_PROFILES = 200;

/** "My Game 2!" → "custom-my-game-2" (what the API uses when the client sends no id). */
export function customIdFor(name: string): string {
  const slug = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 56);
  return `custom-${slug || 'game'}`;
}

export class GameCatalog extends EventEmitter<{ changed: [] }> {
  private readonly byId = new Map<string, GameProfile>();

  constructor(
    readonly builtins: readonly GameProfile[],
    private readonly store: CustomProfileStore,
  ) {
    super();
    for (const p of builtins) this.byId.set(p.id, p);
    for (const p of store.list()) if (!this.byId.has(p.id)) this.byId.set(p.id, p);
  }

  /** Built-ins first (data-file order), then custom profiles (creation order). */
  all(): GameProfile[] {
    return [...this.byId.values()];
  }

  get(id: string): GameProfile | undefined {
    return this.byId.get(id);
  }

  /** Validates, stores and returns the custom profile; throws CatalogError and stores nothing on bad input. */
  addCustom(raw: unknown): GameProfile {
    const r = checkProfile(raw, { custom: true });
    if (!r.ok) throw new CatalogError('invalid', `the game profile is invalid: ${r.errors.join('; ')}`);
    if (this.byId.has(r.profile.id)) throw new CatalogError('exists', `a game profile with id "${r.profile.id}" already exists; choose another name or id`);
    if (this.all().filter((p) => p.custom).length >= MAX_CUSTOM_PROFILES) throw new CatalogError('full', `at most ${MAX_CUSTOM_PROFILES} custom game profiles; delete one first`);
    this.store.insert(r.profile);
    this.byId.set(r.profile.id, r.profile);
    this.emit('changed');
    return r.profile;
  }

  deleteCustom(id: string): void {
    const p = this.byId.get(id);
    if (!p) throw new CatalogError('not-found', `no game profile with id "${id.slice(0, 80)}"`);
    if (!p.custom) throw new CatalogError('invalid', `"${id}" is a built-in profile; only custom profiles can be deleted`);
    this.store.delete(id);
    this.byId.delete(id);
    this.emit('changed');
  }
}
