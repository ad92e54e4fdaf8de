// The games played here (game sessions): when, how long, who played along and the mean round
// trip to them. Live: a session that ends arrives on the Watch stream (data/games.ts).
import { LitElement, html, nothing } from 'lit';
import { gamesStore, loadSessions, type GameSession } from '../data/games.js';
import { formatDuration } from '../data/format.js';
import { shared } from '../styles/shared.js';
import { gameList } from '../styles/game-list.js';

function whoText(s: GameSession): string {
  if (s.players.length === 0) return 'played alone';
  return 'with ' + s.players
    .map((p) => {
      const rtt = p.averageRttMs > 0 ? `${p.averageRttMs.toFixed(p.averageRttMs < 10 ? 1 : 0)} ms` : 'RTT unknown';
      const relayed = p.averageRttMs > 0 && p.directShare < 1 ? `, ${Math.round((1 - p.directShare) * 100)}% relayed` : '';
      return `${p.name} (${rtt}${relayed})`;
    })
    .join(', ');
}

export class LrGameSessions extends LitElement {
  static override properties = { sessions: { state: true } };
  declare sessions: readonly GameSession[] | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor() {
    super();
    this.sessions = gamesStore.state.sessions;
  }

  static override styles = [shared, gameList];

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = gamesStore.subscribe((s) => (this.sessions = s.sessions));
    void loadSessions().catch(() => {});
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  protected override render() {
    const list = this.sessions;
    return html`<section class="card" aria-label="Sessions">
      <h2>Sessions</h2>
      ${list === undefined
        ? html`<p class="muted">Loading…</p>`
        : list.length === 0
          ? html`<p class="muted" data-testid="sessions-none">No game played yet. A session is kept when a game you play here stops, with who in the party played along.</p>`
          : html`<ul data-testid="game-sessions">
              ${list.map(
                (s) => html`<li class="game" data-testid="session-${s.profileId}">
                  <span class="gname">${s.gameName || s.profileId}</span>
                  <span class="meta">${s.startedAt ? s.startedAt.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : nothing} · ${formatDuration(Number(s.durationSeconds))}</span>
                  <span class="meta">${whoText(s)}</span>
                </li>`,
              )}
            </ul>`}
    </section>`;
  }
}

customElements.define('lr-game-sessions', LrGameSessions);

declare global {
  interface HTMLElementTagNameMap {
    'lr-game-sessions': LrGameSessions;
  }
}
