// The Phone card of the settings page (desktop only): turn the HTTPS remote listener on, show its
// certificate fingerprint, a one-time pairing QR code, and the paired devices with Revoke.
import { LitElement, css, html, nothing } from 'lit';
import {
  createPairing,
  getRemoteAccess,
  listPairedDevices,
  revokePairedDevice,
  RemoteScope,
  scopeLabel,
  setRemoteAccess,
  type PairedDevice,
  type RemoteAccess,
} from '../data/remote.js';
import { shared } from '../styles/shared.js';
import './lr-qr.js';

export class LrPhoneSettings extends LitElement {
  static override properties = {
    access: { state: true },
    devices: { state: true },
    address: { state: true },
    scope: { state: true },
    link: { state: true },
    expires: { state: true },
    busy: { state: true },
    message: { state: true },
  };
  static override styles = [
    shared,
    css`
      .fields { display: grid; gap: 12px; }
      .row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
      .hint { color: var(--lr-muted); font-size: 13px; }
      code { word-break: break-all; }
      lr-qr { width: min(240px, 100%); }
      ul { list-style: none; padding: 0; margin: 0; display: grid; gap: 6px; }
      li { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; justify-content: space-between; }
    `,
  ];

  declare access: RemoteAccess | undefined;
  declare devices: PairedDevice[];
  declare address: string;
  declare scope: RemoteScope;
  declare link: string;
  declare expires: Date | undefined;
  declare busy: boolean;
  declare message: string;
  private poll: number | undefined;

  constructor() {
    super();
    this.devices = [];
    this.address = '';
    this.scope = RemoteScope.REMOTE_SCOPE_VIEW;
    this.link = '';
    this.busy = false;
    this.message = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
    // A phone pairs on its own: keep the list current while the card is open.
    this.poll = window.setInterval(() => void this.refreshDevices(), 3000);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.clearInterval(this.poll);
  }

  private async refresh(): Promise<void> {
    try {
      this.access = await getRemoteAccess();
      // The field stays disabled until this answer, so nothing typed is overwritten by it.
      this.address = this.access.listenAddress;
      await this.refreshDevices();
    } catch (err) {
      this.message = `Could not read the phone settings: ${(err as Error).message}`;
    }
  }

  private async refreshDevices(): Promise<void> {
    try {
      this.devices = await listPairedDevices();
    } catch {
      // The next poll tries again; the card keeps what it showed.
    }
  }

  private async act(what: () => Promise<void>): Promise<void> {
    this.busy = true;
    this.message = '';
    try {
      await what();
    } catch (err) {
      this.message = (err as Error).message;
    } finally {
      this.busy = false;
    }
  }

  private toggle(on: boolean): Promise<void> {
    return this.act(async () => {
      this.access = await setRemoteAccess(on, this.address.trim(), this.access?.port ?? 0);
      this.link = '';
    });
  }

  private pair(): Promise<void> {
    return this.act(async () => {
      const p = await createPairing(this.scope);
      this.link = p.link;
      this.expires = p.expires;
    });
  }

  private revoke(id: string): Promise<void> {
    return this.act(async () => {
      await revokePairedDevice(id);
      await this.refreshDevices();
    });
  }

  protected override render() {
    const a = this.access;
    return html`
      <section class="card" data-testid="phone-settings">
        <h2>Phone</h2>
        <div class="fields">
          <div class="row">
            <input id="p-on" type="checkbox" data-testid="remote-enabled" .checked=${a?.enabled ?? false} ?disabled=${this.busy || !a}
              @change=${(e: Event) => void this.toggle((e.target as HTMLInputElement).checked)} />
            <label for="p-on">Let my phone open LANrage over the LAN (HTTPS)</label>
          </div>
          <div class="row">
            <label for="p-addr">LAN address</label>
            <input id="p-addr" type="text" inputmode="decimal" data-testid="remote-address" placeholder="automatic" ?disabled=${!a || a.enabled}
              .value=${this.address} @input=${(e: Event) => (this.address = (e.target as HTMLInputElement).value)} />
          </div>
          ${a?.enabled
            ? html`<p>Open <code data-testid="remote-url">${a.url}</code>. Its certificate is made by this helper; check that the phone's
                  browser shows the SHA-256 fingerprint <code data-testid="remote-fingerprint">${a.certificateSha256}</code>.</p>
                <div class="row">
                  <label for="p-scope">New phone may</label>
                  <select id="p-scope" data-testid="pair-scope"
                    @change=${(e: Event) => (this.scope = Number((e.target as HTMLSelectElement).value) as RemoteScope)}>
                    <option value=${RemoteScope.REMOTE_SCOPE_VIEW} ?selected=${this.scope === RemoteScope.REMOTE_SCOPE_VIEW}>view only</option>
                    <option value=${RemoteScope.REMOTE_SCOPE_CONTROL} ?selected=${this.scope === RemoteScope.REMOTE_SCOPE_CONTROL}>control</option>
                  </select>
                  <button type="button" data-testid="pair-create" ?disabled=${this.busy} @click=${() => void this.pair()}>Show pairing QR code</button>
                </div>
                ${this.link
                  ? html`<lr-qr data-testid="pair-qr" .value=${this.link} label="QR code of the one-time pairing link"></lr-qr>
                      <p class="hint">Scan it with the phone; it works once, until ${this.expires?.toLocaleTimeString() ?? 'it expires'}.
                        <code data-testid="pair-link">${this.link}</code></p>`
                  : nothing}`
            : html`<p class="hint">Off: nothing listens beyond this computer.</p>`}
          <h3>Paired devices</h3>
          ${this.devices.length === 0
            ? html`<p class="hint" data-testid="no-devices">None.</p>`
            : html`<ul>
                ${this.devices.map(
                  (d) => html`<li data-testid="device-row" data-device=${d.deviceId}>
                    <span>${d.name} · ${scopeLabel(d.scope)} · last seen ${d.lastSeen?.toLocaleString() ?? '—'}</span>
                    <button type="button" class="secondary" data-testid="revoke" ?disabled=${this.busy} @click=${() => void this.revoke(d.deviceId)}>Revoke</button>
                  </li>`,
                )}
              </ul>`}
          <span role="status" aria-live="polite" data-testid="phone-result">${this.message}</span>
        </div>
      </section>
    `;
  }
}

customElements.define('lr-phone-settings', LrPhoneSettings);

declare global {
  interface HTMLElementTagNameMap {
    'lr-phone-settings': LrPhoneSettings;
  }
}
