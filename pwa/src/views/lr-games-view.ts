// Games: what is running now (live from the Watch stream), the sessions played here, every
// profile the helper knows, and a form for a custom profile. Data and RPCs live in data/games.ts; this only renders and dispatches.
import { LitElement, css, html, nothing } from 'lit';
import { LiveController } from '../data/store-controller.js';
import {
  createCustomProfile,
  deleteCustomProfile,
  discoverySummary,
  gamesStore,
  loadDetections,
  loadProfiles,
  parseProfileForm,
  sourceKinds,
  type GamesState,
  type ProfileForm,
} from '../data/games.js';
import { toApiError } from '../api/errors.js';
import { shared } from '../styles/shared.js';
import { gameList } from '../styles/game-list.js';
import './lr-game-sessions.js';

const EMPTY_FORM: ProfileForm = { name: '', broadcastPorts: '', multicastGroups: '', gamePorts: '', executables: '' };

export class LrGamesView extends LitElement {
  static override properties = {
    games: { state: true },
    filter: { state: true },
    form: { state: true },
    formErrors: { state: true },
    busy: { state: true },
    notice: { state: true },
  };
  declare games: GamesState;
  declare filter: string;
  declare form: ProfileForm;
  declare formErrors: string[];
  declare busy: boolean;
  declare notice: string | undefined;

  private readonly live = new LiveController(this);
  private unsubscribe: (() => void) | undefined;
  private streamsSeen = -1;

  constructor() {
    super();
    this.games = gamesStore.state;
    this.filter = '';
    this.form = { ...EMPTY_FORM };
    this.formErrors = [];
    this.busy = false;
    this.notice = undefined;
  }

  static override styles = [
    shared,
    gameList,
    css`
      h1 {
        margin: 0 0 4px;
        font-size: clamp(22px, 4vw, 28px);
      }
      .cols {
        display: grid;
        gap: 14px;
        grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
        align-items: start;
      }
      @media (max-width: 860px) {
        .cols {
          grid-template-columns: minmax(0, 1fr);
        }
      }
      .badge {
        font-size: 11.5px;
        font-weight: 700;
        padding: 2px 8px;
        border-radius: 999px;
        background: var(--lr-surface-2);
        border: 1px solid var(--lr-border);
      }
      .running .dot {
        width: 9px;
        height: 9px;
        border-radius: 50%;
        background: var(--lr-ok);
        display: inline-block;
        margin-right: 6px;
      }
      label {
        display: grid;
        gap: 4px;
        font-weight: 600;
        font-size: 14px;
      }
      .hint {
        font-weight: 400;
        font-size: 12.5px;
        color: var(--lr-muted);
      }
      form {
        display: grid;
        gap: 12px;
      }
      .profiles {
        max-height: 70vh;
        overflow: auto;
      }
      .error {
        color: var(--lr-err);
      }
      button.small {
        padding: 4px 10px;
        font-size: 13px;
        margin-left: auto;
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = gamesStore.subscribe((s) => (this.games = s));
    void loadProfiles().catch(() => {});
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  protected override willUpdate(): void {
    // A new stream may have missed a game that stopped meanwhile: ask for the list again.
    const opened = this.live.state.streamsOpened;
    if (opened !== this.streamsSeen) {
      this.streamsSeen = opened;
      void loadDetections().catch(() => {});
    }
  }

  private nameOf(id: string): string {
    return this.games.profiles?.find((p) => p.id === id)?.name ?? id;
  }

  private renderRunning() {
    const list = [...this.games.running.values()].sort((a, b) => (a.detectedAt?.getTime() ?? 0) - (b.detectedAt?.getTime() ?? 0));
    return html`<section class="card running" aria-label="Running now">
      <h2>Running now</h2>
      ${list.length === 0
        ? html`<p class="muted" data-testid="games-none">No game running. Start one and it shows up here within a couple of seconds.</p>`
        : html`<ul data-testid="games-running">
            ${list.map((d) => {
              const p = this.games.profiles?.find((x) => x.id === d.profileId);
              return html`<li class="game" data-testid="running-${d.profileId}">
                <span class="gname"><span class="dot"></span>${d.gameName || this.nameOf(d.profileId)}</span>
                <span class="meta">pid ${d.pid} · ${d.exe}</span>
                ${p && discoverySummary(p) ? html`<span class="meta">LAN discovery: ${discoverySummary(p)}</span>` : nothing}
              </li>`;
            })}
          </ul>`}
    </section>`;
  }

  private renderProfiles() {
    const all = this.games.profiles;
    const q = this.filter.trim().toLowerCase();
    const shown = all?.filter((p) => q === '' || p.name.toLowerCase().includes(q) || p.id.includes(q)) ?? [];
    return html`<section class="card" aria-label="Game profiles">
      <h2>Profiles ${all ? html`<span class="muted">(${all.length})</span>` : nothing}</h2>
      <input type="search" placeholder="Filter games" aria-label="Filter games" data-testid="games-filter"
        .value=${this.filter} @input=${(e: Event) => (this.filter = (e.target as HTMLInputElement).value)} />
      ${all === undefined
        ? html`<p class="muted">Loading…</p>`
        : html`<ul class="profiles" data-testid="games-profiles">
            ${shown.map(
              (p) => html`<li class="game" data-testid="profile-${p.id}">
                <span class="gname">${p.name}</span>
                ${p.custom ? html`<span class="badge">custom</span>` : nothing}
                <span class="meta">${discoverySummary(p) || 'no LAN discovery (join by address)'} · ${sourceKinds(p).join(', ')}</span>
                ${p.custom
                  ? html`<button class="secondary small" data-testid="delete-${p.id}" ?disabled=${this.busy} @click=${() => this.deleteProfile(p.id)}>Delete</button>`
                  : nothing}
              </li>`,
            )}
          </ul>`}
    </section>`;
  }

  private field(key: keyof ProfileForm, label: string, hint: string, placeholder: string) {
    return html`<label
      >${label} <span class="hint">${hint}</span>
      <input type="text" name=${key} data-testid="form-${key}" placeholder=${placeholder} .value=${this.form[key]}
        @input=${(e: Event) => (this.form = { ...this.form, [key]: (e.target as HTMLInputElement).value })} />
    </label>`;
  }

  private renderForm() {
    return html`<section class="card" aria-label="Add a custom game">
      <h2>Add a custom game</h2>
      <form @submit=${this.submit} data-testid="custom-form">
        ${this.field('name', 'Name', '', 'My LAN game')}
        ${this.field('executables', 'Executables', 'game.exe for Windows and Wine, a binary name for Linux', 'mygame.exe mygame')}
        ${this.field('broadcastPorts', 'Broadcast ports', 'UDP ports the game broadcasts to when it looks for games', '27015-27020')}
        ${this.field('multicastGroups', 'Multicast groups', 'group:port', '224.0.2.60:4445')}
        ${this.field('gamePorts', 'Game ports', 'port/udp or first-last/tcp', '7777/udp')}
        ${this.formErrors.length > 0
          ? html`<ul class="error" role="alert" data-testid="form-errors">${this.formErrors.map((e) => html`<li>${e}</li>`)}</ul>`
          : nothing}
        ${this.notice ? html`<p class="muted" role="status" data-testid="form-notice">${this.notice}</p>` : nothing}
        <div><button type="submit" ?disabled=${this.busy} data-testid="form-submit">Add game</button></div>
      </form>
    </section>`;
  }

  private async submit(e: Event): Promise<void> {
    e.preventDefault();
    this.notice = undefined;
    const r = parseProfileForm(this.form);
    if (!r.ok) {
      this.formErrors = r.errors;
      return;
    }
    this.busy = true;
    try {
      const created = await createCustomProfile(r.profile);
      this.formErrors = [];
      this.form = { ...EMPTY_FORM };
      this.notice = `Added ${created?.name ?? r.profile.name}.`;
    } catch (err) {
      this.formErrors = [toApiError(err).message];
    } finally {
      this.busy = false;
    }
  }

  private async deleteProfile(id: string): Promise<void> {
    this.busy = true;
    try {
      await deleteCustomProfile(id);
    } catch (err) {
      this.notice = toApiError(err).message;
    } finally {
      this.busy = false;
    }
  }

  protected override render() {
    return html`<div class="grid">
      <div>
        <h1>Games</h1>
        <p class="muted">LANrage recognises the games below from their processes (Linux, Windows and Wine/Proton names) while they run.</p>
      </div>
      ${this.renderRunning()}
      <lr-game-sessions></lr-game-sessions>
      <div class="cols">${this.renderProfiles()} ${this.renderForm()}</div>
    </div>`;
  }
}

customElements.define('lr-games-view', LrGamesView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-games-view': LrGamesView;
  }
}
