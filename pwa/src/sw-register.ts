// Service worker registration through workbox-window, so the page can tell the user when a new
// version is waiting instead of swapping code under a running view.
import { Workbox } from 'workbox-window';

export const updates = new EventTarget();
export const UPDATE_READY = 'update-ready';

let wb: Workbox | undefined;

export function registerServiceWorker(): void {
  // Dev server: no service worker (it would cache modules the dev server wants to hot-swap).
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return;
  wb = new Workbox('/sw.js', { scope: '/' });
  wb.addEventListener('waiting', () => updates.dispatchEvent(new Event(UPDATE_READY)));
  void wb.register().catch((err: unknown) => {
    // The app works without offline support; say why in the console for whoever debugs it.
    console.warn('LANrage: service worker registration failed', err);
  });
}

/** Activates the waiting worker and reloads once it controls the page. */
export function applyUpdate(): void {
  if (!wb) return;
  wb.addEventListener('controlling', () => window.location.reload());
  wb.messageSkipWaiting();
}
