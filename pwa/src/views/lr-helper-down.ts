// What the page shows when the helper cannot be reached: the service worker still serves the
// shell, so this doubles as the offline page.
import { LitElement, css, html, nothing } from 'lit';
import { startLive } from '../data/live.js';
import { shared } from '../styles/shared.js';

export class LrHelperDown extends LitElement {
  static override properties = { detail: { type: String }, remote: { type: Boolean } };
  /** The last error, for whoever needs to debug a helper that is running but unreachable. */
  declare detail: string | undefined;
  /** On a paired phone: the fix is on the desktop, not a command here. */
  declare remote: boolean;

  constructor() {
    super();
    this.detail = undefined;
    this.remote = false;
  }

  static override styles = [
    shared,
    css`
      .card {
        max-width: 720px;
        margin: 8vh auto 0;
        padding: 28px 26px;
        border-color: color-mix(in srgb, var(--lr-warn) 40%, var(--lr-border));
      }
      .icon {
        width: 44px;
        height: 44px;
        border-radius: 12px;
        display: grid;
        place-items: center;
        background: color-mix(in srgb, var(--lr-warn) 18%, transparent);
        color: var(--lr-warn);
        font-size: 24px;
        font-weight: 800;
        margin-bottom: 14px;
      }
      h1 {
        font-size: 22px;
        margin: 0 0 10px;
      }
      p {
        line-height: 1.6;
        margin: 0 0 12px;
      }
      .row {
        display: flex;
        flex-wrap: wrap;
        gap: 10px 16px;
        align-items: center;
        margin-top: 18px;
      }
      .detail {
        font-size: 12.5px;
        overflow-wrap: anywhere;
      }
    `,
  ];

  protected override render() {
    return html`<section class="card" role="alert" data-testid="helper-down">
      <div class="icon" aria-hidden="true">!</div>
      ${this.remote
        ? html`<h1>LANrage on the desktop does not answer this phone.</h1>
            <p>The helper may be stopped, phone access turned off, or this phone unpaired (see the error below).</p>`
        : html`<h1>The LANrage helper is not running.</h1>
            <p>
              Start it with <code>sudo npm start</code> in the LANrage folder (or
              <code>sudo systemctl start lanrage</code>).
            </p>`}
      <p class="muted">This page reconnects by itself as soon as the helper answers.</p>
      <div class="row">
        <button type="button" class="secondary" data-testid="retry" @click=${() => startLive().retryNow()}>
          Try again now
        </button>
        ${this.detail ? html`<span class="detail muted">Last error: ${this.detail}</span>` : nothing}
      </div>
    </section>`;
  }
}

customElements.define('lr-helper-down', LrHelperDown);

declare global {
  interface HTMLElementTagNameMap {
    'lr-helper-down': LrHelperDown;
  }
}
