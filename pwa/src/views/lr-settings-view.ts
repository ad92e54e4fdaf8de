// Settings: a form over every field of lanrage.v1.Settings. Save sends only the changed fields.
import { LitElement, css, html, nothing, type TemplateResult } from 'lit';
import {
  SETTINGS_PATHS,
  changedPaths,
  draftFrom,
  fieldOfMessage,
  getSettings,
  updateSettings,
  validateDraft,
  type FieldErrors,
  type Settings,
  type SettingsDraft,
  type SettingsField,
} from '../data/settings.js';
import { ApiError, Code } from '../api/errors.js';
import { shared } from '../styles/shared.js';
import '../components/lr-discord-settings.js';
import '../components/lr-phone-settings.js';
import { onRemote } from '../api/session.js';

type TextField = Exclude<SettingsField, 'broadcastEnabled'>;

interface FieldSpec {
  readonly label: string;
  readonly hint: string;
  readonly inputmode?: 'numeric' | 'url' | 'text';
  readonly maxlength?: number;
  readonly placeholder?: string;
}

const FIELDS: Record<TextField, FieldSpec> = {
  deviceName: {
    label: 'Device name',
    hint: "Shown to other players. 1–32 characters: letters, digits, spaces and . _ - ', starting with a letter or digit.",
    maxlength: 32,
  },
  controlServerUrl: {
    label: 'Control server',
    hint: 'Empty uses the server built into this helper; otherwise https://host:port, or up to 4 instances of one control service separated by commas (the first is tried first).',
    inputmode: 'url',
    // Four URLs of up to 256 characters and ", " between them.
    maxlength: 4 * 256 + 3 * 2,
    placeholder: 'Built into this helper',
  },
  interfaceName: {
    label: 'WireGuard interface',
    hint: '1–15 characters from A–Z a–z 0–9 _ . - , starting with a letter.',
    maxlength: 15,
  },
  listenPort: {
    label: 'Public UDP port',
    hint: '0 lets the helper choose; otherwise 1024–65535.',
    inputmode: 'numeric',
    maxlength: 5,
  },
  mtu: { label: 'Tunnel MTU', hint: '1280–1420 bytes.', inputmode: 'numeric', maxlength: 4 },
  broadcastPorts: {
    label: 'Extra broadcast ports',
    hint: 'UDP ports carried beyond those of detected games, separated by commas (at most 64).',
    placeholder: 'None',
  },
  metricsRetentionHours: {
    label: 'Metrics history (hours)',
    hint: 'How long history is kept: 1–720 hours.',
    inputmode: 'numeric',
    maxlength: 3,
  },
};

// How the save message names each field, mid-sentence.
const NOUNS: Record<SettingsField, string> = {
  deviceName: 'device name',
  controlServerUrl: 'control server',
  interfaceName: 'WireGuard interface',
  listenPort: 'public UDP port',
  mtu: 'tunnel MTU',
  broadcastEnabled: 'LAN broadcasts',
  broadcastPorts: 'extra broadcast ports',
  metricsRetentionHours: 'metrics history',
};

type LoadState = { kind: 'loading' } | { kind: 'error'; message: string } | { kind: 'ready' };
type SaveResult = { ok: true; message: string } | { ok: false; message: string } | undefined;

export class LrSettingsView extends LitElement {
  static override properties = {
    load: { state: true },
    saved: { state: true },
    draft: { state: true },
    saving: { state: true },
    result: { state: true },
    serverErrors: { state: true },
  };

  declare load: LoadState;
  declare saved: Settings | undefined;
  declare draft: SettingsDraft | undefined;
  declare saving: boolean;
  declare result: SaveResult;
  /** Server messages pinned to a field until that field is edited. */
  declare serverErrors: FieldErrors;

  constructor() {
    super();
    this.load = { kind: 'loading' };
    this.saved = undefined;
    this.draft = undefined;
    this.saving = false;
    this.result = undefined;
    this.serverErrors = {};
  }

  static override styles = [
    shared,
    css`
      form {
        display: grid;
        gap: 14px;
      }
      fieldset {
        margin: 0;
      }
      /* Grid on an inner box: a legend inside a grid fieldset would take a cell of its own. */
      .fields {
        clear: both;
        display: grid;
        gap: 16px 20px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 230px), 1fr));
      }
      /* Floated so it sits inside the card instead of on its border. */
      legend {
        padding: 0;
        float: left;
        width: 100%;
        font-size: 13px;
        font-weight: 600;
        letter-spacing: 0.06em;
        text-transform: uppercase;
        color: var(--lr-muted);
        margin-bottom: 12px;
      }
      /* A lone field would stretch across a wide screen; a name needs no 1100 px box. */
      .fields > .field:only-child {
        max-width: 540px;
      }
      .field {
        display: grid;
        gap: 6px;
        align-content: start;
      }
      label {
        font-weight: 600;
        font-size: 14px;
      }
      .hint {
        font-size: 12.5px;
        color: var(--lr-muted);
        line-height: 1.4;
      }
      .err {
        font-size: 13px;
        color: var(--lr-err);
      }
      .check {
        display: flex;
        gap: 12px;
        align-items: flex-start;
      }
      .check input {
        width: 20px;
        height: 20px;
        margin: 2px 0 0;
        accent-color: var(--lr-accent);
        flex: none;
      }
      .actions {
        bottom: var(--lr-bottom-offset, 0px);
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 10px 14px;
        padding: 12px 18px;
        background: color-mix(in srgb, var(--lr-surface) 92%, transparent);
        backdrop-filter: blur(6px);
      }
      /* Pinned in view only while there is something to save. */
      .actions.dirty {
        position: sticky;
        box-shadow: 0 -8px 24px rgb(0 0 0 / 35%);
      }
      .result {
        font-size: 14px;
        flex: 1 1 220px;
      }
      .result.ok {
        color: var(--lr-ok);
      }
      .result.bad {
        color: var(--lr-err);
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    void this.reload();
  }

  private async reload(keepResult = false): Promise<void> {
    if (!this.saved) this.load = { kind: 'loading' };
    try {
      const s = await getSettings();
      this.saved = s;
      this.draft = draftFrom(s);
      this.serverErrors = {};
      this.load = { kind: 'ready' };
      if (!keepResult) this.result = undefined;
    } catch (err) {
      this.load = { kind: 'error', message: err instanceof Error ? err.message : String(err) };
    }
  }

  private edit<K extends keyof SettingsDraft>(field: K, value: SettingsDraft[K]): void {
    if (!this.draft) return;
    this.draft = { ...this.draft, [field]: value };
    if (this.serverErrors[field]) {
      const { [field]: _dropped, ...rest } = this.serverErrors;
      this.serverErrors = rest;
    }
    this.result = undefined;
  }

  private async save(e: Event): Promise<void> {
    e.preventDefault();
    if (!this.draft || !this.saved || this.saving) return;
    const { settings } = validateDraft(this.draft);
    if (!settings) return;
    const paths = changedPaths(this.saved, settings);
    if (paths.length === 0) return;
    this.saving = true;
    this.result = undefined;
    try {
      await updateSettings(settings, paths);
      const names = (Object.keys(SETTINGS_PATHS) as SettingsField[])
        .filter((f) => paths.includes(SETTINGS_PATHS[f]))
        .map((f) => NOUNS[f]);
      this.result = { ok: true, message: `Saved ${names.join(', ')}.` };
      // Show what the helper stored, which is the truth even if it normalised something.
      await this.reload(true);
    } catch (err) {
      this.result = { ok: false, message: this.describe(err) };
      if (err instanceof ApiError && err.code === Code.INVALID_ARGUMENT) {
        const field = fieldOfMessage(err.message);
        if (field) this.serverErrors = { ...this.serverErrors, [field]: err.message };
      }
    } finally {
      this.saving = false;
    }
  }

  private describe(err: unknown): string {
    if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
    switch (err.code) {
      case Code.INVALID_ARGUMENT:
        return `The helper rejected the change: ${err.message}`;
      case Code.UNAUTHENTICATED:
      case Code.PERMISSION_DENIED:
        return `The helper refused the change (${err.message}). Reload the page and try again.`;
      default:
        return err.helperDown ? 'Could not reach the helper; nothing was saved.' : `Saving failed: ${err.message}`;
    }
  }

  private renderText(field: TextField, errors: FieldErrors): TemplateResult {
    const spec = FIELDS[field];
    const path = SETTINGS_PATHS[field];
    const id = `f-${path}`;
    // Saved values are valid, so a client-side error can only follow an edit.
    const error = this.serverErrors[field] ?? errors[field];
    return html`
      <div class="field">
        <label for=${id}>${spec.label}</label>
        <input
          type="text"
          id=${id}
          name=${path}
          data-testid="input-${path}"
          .value=${this.draft?.[field] ?? ''}
          inputmode=${spec.inputmode ?? 'text'}
          maxlength=${spec.maxlength ?? 200}
          placeholder=${spec.placeholder ?? ''}
          autocomplete="off"
          spellcheck="false"
          aria-invalid=${error ? 'true' : 'false'}
          aria-describedby="${id}-hint ${id}-err"
          @input=${(e: Event) => this.edit(field, (e.target as HTMLInputElement).value)}
        />
        <span class="hint" id="${id}-hint">${spec.hint}</span>
        <span class="err" id="${id}-err" data-testid="error-${path}">${error ?? nothing}</span>
      </div>
    `;
  }

  protected override render() {
    if (this.load.kind === 'loading' || !this.draft || !this.saved) {
      if (this.load.kind === 'error') {
        return html`<section class="card" role="alert">
          <h2>Settings</h2>
          <p>Could not load the settings: ${this.load.message}</p>
          <button type="button" @click=${() => void this.reload()}>Try again</button>
        </section>`;
      }
      return html`<section class="card"><p class="muted">Loading settings…</p></section>`;
    }
    const { settings, errors } = validateDraft(this.draft);
    const savedDraft = draftFrom(this.saved);
    const dirtyField = (f: SettingsField): boolean => this.draft?.[f] !== savedDraft[f];
    const paths = settings ? changedPaths(this.saved, settings) : [];
    const anyDirty = (Object.keys(savedDraft) as SettingsField[]).some(dirtyField);
    const invalid = !settings;
    const text = (f: TextField) => this.renderText(f, errors);
    return html`
      <form data-testid="settings-form" novalidate @submit=${(e: Event) => void this.save(e)}>
        <fieldset class="card">
          <legend>Identity</legend>
          <div class="fields">
            ${text('deviceName')}
          </div>
        </fieldset>
        <fieldset class="card">
          <legend>Network</legend>
          <div class="fields">
            ${text('controlServerUrl')} ${text('interfaceName')} ${text('listenPort')} ${text('mtu')}
          </div>
        </fieldset>
        <fieldset class="card">
          <legend>LAN games</legend>
          <div class="fields">
            <div class="field">
              <div class="check">
                <input
                  type="checkbox"
                  id="f-broadcast_enabled"
                  name="broadcast_enabled"
                  data-testid="input-broadcast_enabled"
                  .checked=${this.draft.broadcastEnabled}
                  aria-describedby="f-broadcast_enabled-hint"
                  @change=${(e: Event) => this.edit('broadcastEnabled', (e.target as HTMLInputElement).checked)}
                />
                <div class="field">
                  <label for="f-broadcast_enabled">Carry LAN broadcasts</label>
                  <span class="hint" id="f-broadcast_enabled-hint">
                    Forward the broadcasts and multicasts games use to find each other to everyone in the party.
                  </span>
                </div>
              </div>
            </div>
            ${text('broadcastPorts')}
          </div>
        </fieldset>
        <fieldset class="card">
          <legend>Metrics</legend>
          <div class="fields">
            ${text('metricsRetentionHours')}
          </div>
        </fieldset>
        <div class="card actions ${anyDirty || this.result ? 'dirty' : ''}">
          <button type="submit" data-testid="save" ?disabled=${this.saving || invalid || paths.length === 0}>
            ${this.saving ? 'Saving…' : 'Save'}
          </button>
          <button
            type="button"
            class="secondary"
            data-testid="discard"
            ?disabled=${this.saving || !anyDirty}
            @click=${() => {
              this.draft = savedDraft;
              this.serverErrors = {};
              this.result = undefined;
            }}
          >
            Discard changes
          </button>
          <span
            class="result ${this.result ? (this.result.ok ? 'ok' : 'bad') : ''}"
            data-testid="save-result"
            data-ok=${this.result ? String(this.result.ok) : ''}
            role="status"
            aria-live="polite"
          >
            ${this.result?.message ??
            (invalid && anyDirty ? 'Fix the highlighted fields to save.' : anyDirty ? '' : 'No unsaved changes.')}
          </span>
        </div>
      </form>
      <lr-discord-settings></lr-discord-settings>
      ${onRemote() ? nothing : html`<lr-phone-settings></lr-phone-settings>`}
    `;
  }
}

customElements.define('lr-settings-view', LrSettingsView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-settings-view': LrSettingsView;
  }
}
