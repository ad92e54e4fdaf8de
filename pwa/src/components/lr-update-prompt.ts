// "New version ready" toast, shown only when a new service worker is waiting.
import { LitElement, css, html, nothing } from 'lit';
import { UPDATE_READY, applyUpdate, updates } from '../sw-register.js';
import { shared } from '../styles/shared.js';

export class LrUpdatePrompt extends LitElement {
  static override properties = { ready: { state: true }, dismissed: { state: true } };
  declare ready: boolean;
  declare dismissed: boolean;

  private readonly onReady = (): void => {
    this.ready = true;
    this.dismissed = false;
  };

  constructor() {
    super();
    this.ready = false;
    this.dismissed = false;
  }

  static override styles = [
    shared,
    css`
      .toast {
        position: fixed;
        z-index: 10;
        left: 50%;
        transform: translateX(-50%);
        bottom: calc(16px + env(safe-area-inset-bottom));
        width: min(560px, calc(100vw - 24px));
        display: flex;
        flex-wrap: wrap;
        gap: 10px;
        align-items: center;
        justify-content: space-between;
        padding: 12px 14px;
        background: var(--lr-surface-2);
        box-shadow: 0 10px 30px rgb(0 0 0 / 45%);
      }
      .actions {
        display: flex;
        gap: 8px;
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    updates.addEventListener(UPDATE_READY, this.onReady);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    updates.removeEventListener(UPDATE_READY, this.onReady);
  }

  protected override render() {
    if (!this.ready || this.dismissed) return nothing;
    return html`<div class="card toast" role="status" data-testid="update-prompt">
      <span>A new version of LANrage is ready.</span>
      <span class="actions">
        <button type="button" class="secondary" @click=${() => (this.dismissed = true)}>Later</button>
        <button type="button" @click=${applyUpdate}>Reload</button>
      </span>
    </div>`;
  }
}

customElements.define('lr-update-prompt', LrUpdatePrompt);

declare global {
  interface HTMLElementTagNameMap {
    'lr-update-prompt': LrUpdatePrompt;
  }
}
