// What the phone tests share: the phone's Chromium inside the phone namespace, opening a pairing link.
import type { PhoneNet } from '../lab/phone-net.js';
import { launchBrowser, waitLive, type Browser } from './browser-lib.js';

/** Opens `link` on a fresh phone (viewport 390×844, touch); resolves once paired and live. */
export async function pairPhone(net: PhoneNet, link: string, timeoutMs = 30_000): Promise<{ phone: Browser; pairingMs: number }> {
  // The certificate is self-made: the test checks its fingerprint against the desktop's instead.
  const phone = await launchBrowser({ executablePath: net.wrapper('/usr/bin/chromium'), phone: true, ignoreHTTPSErrors: true });
  const t0 = performance.now();
  try {
    await phone.page.goto(link);
    await phone.page.waitForSelector('[data-testid="pair-result"][data-state="paired"]', { timeout: timeoutMs });
    await waitLive(phone.page, timeoutMs);
  } catch (err) {
    await phone.close();
    throw err;
  }
  return { phone, pairingMs: performance.now() - t0 };
}
