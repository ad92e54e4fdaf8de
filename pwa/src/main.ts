// Entry point: on a phone opened from a pairing link, pair first (the live stream needs the
// token); then start the tab's one live stream and let the shell render from the store.
import { startLive } from './data/live.js';
import { primeStatus } from './data/status.js';
import { primeParty } from './data/party.js';
import { pairFromLocation, setPairingOutcome } from './data/remote.js';
import { registerServiceWorker } from './sw-register.js';
import './views/lr-app.js';

setPairingOutcome(await pairFromLocation());
startLive();
void primeStatus();
void primeParty();
registerServiceWorker();
