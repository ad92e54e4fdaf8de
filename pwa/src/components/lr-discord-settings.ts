// The Discord card of the settings page: webhook for party news, Rich Presence switch and
// application id. The stored webhook is never shown (the helper does not return it): the field
// only takes a new one.
import { LitElement, css, html, nothing } from 'lit';
import {
  clientIdProblem,
  connectDiscord,
  disconnectDiscord,
  getDiscordStatus,
  webhookStateText,
  webhookUrlProblem,
  DiscordWebhookState,
  type DiscordStatus,
} from '../data/discord.js';
import { ApiError } from '../api/errors.js';
import { shared } from '../styles/shared.js';

export class LrDiscordSettings extends LitElement {
  static override properties = {
    status: { state: true },
    webhook: { state: true },
    clientId: { state: true },
    richPresence: { state: true },
    busy: { state: true },
    message: { state: true },
  };
  static override styles = [
    shared,
    css`
      .fields { display: grid; gap: 12px; }
      .field { display: grid; gap: 4px; }
      .hint, .err { font-size: 13px; }
      .hint { color: var(--lr-muted); }
      .err { color: var(--lr-bad, #c33); }
      input[type='text'], input[type='url'] { width: 100%; font: inherit; padding: 6px 8px; }
      .row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
      .state.bad { color: var(--lr-bad, #c33); }
    `,
  ];

  // `declare`: class fields would shadow Lit's reactive accessors.
  declare status: DiscordStatus | undefined;
  declare webhook: string;
  declare clientId: string;
  declare richPresence: boolean;
  declare busy: boolean;
  declare message: string;
  private poll: number | undefined;

  constructor() {
    super();
    this.webhook = '';
    this.clientId = '';
    this.richPresence = false;
    this.busy = false;
    this.message = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh(true);
    // The queue's state changes on its own (rate limits, a deleted webhook): keep it current.
    this.poll = window.setInterval(() => void this.refresh(false), 5000);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.clearInterval(this.poll);
  }

  private async refresh(fillForm: boolean): Promise<void> {
    try {
      const s = await getDiscordStatus();
      this.status = s;
      if (fillForm) {
        this.clientId = s.clientId;
        this.richPresence = s.richPresence;
      }
    } catch (err) {
      if (fillForm) this.message = `Could not read the Discord status: ${(err as Error).message}`;
    }
  }

  private async save(e: Event): Promise<void> {
    e.preventDefault();
    this.busy = true;
    this.message = '';
    try {
      this.status = await connectDiscord(this.webhook.trim(), this.clientId.trim(), this.richPresence);
      this.message = this.webhook.trim() ? 'Saved. A test message is on its way to the channel.' : 'Saved.';
      this.webhook = '';
    } catch (err) {
      this.message = err instanceof ApiError ? err.message : String(err);
    } finally {
      this.busy = false;
    }
  }

  private async disconnect(): Promise<void> {
    this.busy = true;
    try {
      await disconnectDiscord();
      this.message = 'Disconnected: the webhook is forgotten and Rich Presence is off.';
      this.richPresence = false;
      await this.refresh(true);
    } catch (err) {
      this.message = err instanceof ApiError ? err.message : String(err);
    } finally {
      this.busy = false;
    }
  }

  protected override render() {
    const s = this.status;
    const urlErr = webhookUrlProblem(this.webhook);
    const idErr = clientIdProblem(this.clientId);
    const needsId = this.richPresence && this.clientId.trim() === '';
    const bad = s?.webhookState === DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED || s?.webhookState === DiscordWebhookState.DISCORD_WEBHOOK_STATE_RETRYING;
    return html`
      <form class="card" data-testid="discord-settings" novalidate @submit=${(e: Event) => void this.save(e)}>
        <h2>Discord</h2>
        <div class="fields">
          <p class="state ${bad ? 'bad' : ''}" data-testid="discord-state" role="status">${s ? webhookStateText(s) : 'Loading…'}</p>
          <div class="field">
            <label for="d-webhook">${s?.webhookConfigured ? 'Replace the webhook' : 'Channel webhook'}</label>
            <input id="d-webhook" type="url" inputmode="url" autocomplete="off" data-testid="discord-webhook"
              placeholder=${s?.webhookConfigured ? 'A webhook is set (hidden)' : 'https://discord.com/api/webhooks/…'}
              .value=${this.webhook} @input=${(e: Event) => (this.webhook = (e.target as HTMLInputElement).value)} />
            <span class="hint">Party news (players joining and leaving, games, servers) is posted in that channel. The URL is kept secret by the helper.</span>
            <span class="err" data-testid="discord-webhook-error">${urlErr ?? nothing}</span>
          </div>
          <div class="row">
            <input id="d-rp" type="checkbox" data-testid="discord-rich-presence" .checked=${this.richPresence}
              @change=${(e: Event) => (this.richPresence = (e.target as HTMLInputElement).checked)} />
            <label for="d-rp">Show the party in my Discord profile (Rich Presence)</label>
          </div>
          <div class="field">
            <label for="d-client">Discord application id</label>
            <input id="d-client" type="text" inputmode="numeric" maxlength="20" data-testid="discord-client-id"
              .value=${this.clientId} @input=${(e: Event) => (this.clientId = (e.target as HTMLInputElement).value)} />
            <span class="hint">Rich Presence runs in your session: start <code>lanrage presence</code> (installed as a user service or autostart entry).</span>
            <span class="err">${idErr ?? (needsId ? 'Rich Presence needs an application id.' : nothing)}</span>
          </div>
          <div class="row">
            <button type="submit" data-testid="discord-save" ?disabled=${this.busy || !!urlErr || !!idErr || needsId}>${this.busy ? 'Saving…' : 'Save'}</button>
            <button type="button" class="secondary" data-testid="discord-disconnect" ?disabled=${this.busy || !(s?.webhookConfigured || s?.richPresence)} @click=${() => void this.disconnect()}>Disconnect</button>
            <span role="status" aria-live="polite" data-testid="discord-result">${this.message}</span>
          </div>
        </div>
      </form>
    `;
  }
}

customElements.define('lr-discord-settings', LrDiscordSettings);

declare global {
  interface HTMLElementTagNameMap {
    'lr-discord-settings': LrDiscordSettings;
  }
}
