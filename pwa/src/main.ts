// Entry point: start the tab's one live stream, then let the shell render from the store.
import { startLive } from './data/live.js';
import { primeStatus } from './data/status.js';
import { primeParty } from './data/party.js';
import { registerServiceWorker } from './sw-register.js';
import './views/lr-app.js';

startLive();
void primeStatus();
void primeParty();
registerServiceWorker();
