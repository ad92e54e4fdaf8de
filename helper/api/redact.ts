import type { Party } from '../gen/lanrage/v1/party.js';
import type { WatchEvent } from '../core/helper-state.js';
import type { Identity } from '../authz/authz.js';

// What a view-only phone must not see. A view token is for watching: anything that would let its
// holder (or whoever picks up the phone) join the party or act for this player is blanked here.
// Today that is the invite link, which carries the invite secret. The other reads hold no secret:
// Discord's webhook URL and the paired devices' tokens are never returned, remote access and
// pairing links are admin-only, settings have no keys, and a server's connect_url names a virtual
// IP that only members reach.

/** True for a caller whose answers must go without join secrets: a paired device with a view token. */
export function redactsSecrets(id: Identity | undefined): boolean {
  return id?.kind === 'remote' && id.scope === 'view';
}

export function redactForViewer(party: Party): Party {
  return { ...party, inviteLink: '' };
}

export function redactEventForViewer(e: WatchEvent): WatchEvent {
  return e.party?.party ? { ...e, party: { party: redactForViewer(e.party.party) } } : e;
}
