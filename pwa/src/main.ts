// Entry point: start the tab's one live stream, then let the shell render from the store. On a
// phone opened from a pairing link, the code is redeemed first and every call waits for its token.
import { holdCallsUntil } from './api/session.js';
import { startLive } from './data/live.js';
import { primeStatus } from './data/status.js';
import { primeParty } from './data/party.js';
import { pairFromLocation, setPairingOutcome } from './data/remote.js';
import { registerServiceWorker } from './sw-register.js';
import './views/lr-app.js';

const pairing = pairFromLocation().then(setPairingOutcome);
holdCallsUntil(pairing);
startLive();
void primeStatus();
void primeParty();
registerServiceWorker();
