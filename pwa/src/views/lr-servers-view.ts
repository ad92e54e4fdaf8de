// Servers: every game server in the party (found on each player's machine, announced through the
// control plane), live from the Watch stream; filter, sort by ping, favourites, copy the address.
import { LitElement, css, html, nothing } from 'lit';
import { pingLabel, playersLabel, refreshServers, serversStore, setFavorite, visibleServers, type GameServer, type ServerSort } from '../data/servers.js';
import { toApiError } from '../api/errors.js';
import { shared } from '../styles/shared.js';

/** RTTs change without an event worth streaming: the list is re-read this often while shown. */
const REFRESH_MS = 10_000;

export class LrServersView extends LitElement {
  static override properties = { servers: { state: true }, filter: { state: true }, sort: { state: true }, error: { state: true }, copied: { state: true } };
  declare servers: readonly GameServer[];
  declare filter: string;
  declare sort: ServerSort;
  declare error: string | undefined;
  declare copied: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    this.servers = [];
    this.filter = '';
    this.sort = 'ping';
    this.error = undefined;
    this.copied = undefined;
  }

  static override styles = [
    shared,
    css`
      .head {
        display: flex;
        flex-wrap: wrap;
        gap: 10px;
        align-items: center;
        justify-content: space-between;
      }
      .head h1 {
        margin: 0;
        font-size: clamp(22px, 4vw, 28px);
      }
      .controls {
        display: flex;
        flex-wrap: wrap;
        gap: 8px;
      }
      .controls input {
        min-width: 0;
        flex: 1 1 180px;
      }
      ul.list {
        list-style: none;
        margin: 0;
        padding: 0;
        display: grid;
        gap: 10px;
      }
      li.server {
        display: grid;
        grid-template-columns: auto 1fr auto;
        gap: 4px 12px;
        align-items: center;
      }
      .name {
        font-weight: 700;
        overflow-wrap: anywhere;
      }
      .meta {
        grid-column: 2 / 4;
        color: var(--lr-muted);
        font-size: 14px;
        overflow-wrap: anywhere;
      }
      .ping {
        font-variant-numeric: tabular-nums;
        white-space: nowrap;
      }
      .actions {
        grid-column: 1 / 4;
        display: flex;
        flex-wrap: wrap;
        gap: 8px;
      }
      button.star {
        font-size: 20px;
        padding: 2px 8px;
        background: none;
        border: none;
        color: var(--lr-muted);
        cursor: pointer;
      }
      button.star[aria-pressed='true'] {
        color: var(--lr-warn);
      }
      code {
        overflow-wrap: anywhere;
      }
      .error {
        color: var(--lr-err);
      }
      @media (max-width: 520px) {
        li.server {
          grid-template-columns: auto 1fr;
        }
        .ping {
          grid-column: 2;
        }
        .meta,
        .actions {
          grid-column: 1 / 3;
        }
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = serversStore.subscribe((l) => (this.servers = l));
    const load = (): void => void refreshServers().then(() => (this.error = undefined), (err: unknown) => (this.error = `Could not list servers: ${toApiError(err).message}`));
    load();
    this.timer = setInterval(load, REFRESH_MS);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
    clearInterval(this.timer);
  }

  private async toggleFavorite(s: GameServer): Promise<void> {
    try {
      await setFavorite(s.id, !s.favorite);
      this.error = undefined;
    } catch (err) {
      this.error = toApiError(err).message;
    }
  }

  private async copy(s: GameServer): Promise<void> {
    try {
      await navigator.clipboard.writeText(s.address);
      this.copied = s.id;
    } catch {
      // No clipboard permission: the address is on screen, selectable.
      this.copied = undefined;
      this.error = `Copy ${s.address} by hand: this browser did not allow the clipboard.`;
    }
  }

  private row(s: GameServer) {
    return html`<li class="server card" data-testid="server" data-id=${s.id}>
      <button class="star" aria-pressed=${s.favorite ? 'true' : 'false'} aria-label=${s.favorite ? 'Remove from favourites' : 'Add to favourites'}
        @click=${() => this.toggleFavorite(s)} data-testid="server-favorite">${s.favorite ? '★' : '☆'}</button>
      <div class="name" data-testid="server-name">${s.password ? '🔒 ' : ''}${s.name}</div>
      <div class="ping" data-testid="server-ping">${pingLabel(s)}</div>
      <div class="meta">
        ${s.gameName}${s.map ? html` · ${s.map}` : nothing} · <span data-testid="server-players">${playersLabel(s)}</span> players ·
        hosted by ${s.hostName}${s.local ? ' (you)' : ''} · <code data-testid="server-address">${s.address}</code>
      </div>
      <div class="actions">
        <button type="button" class="secondary" @click=${() => this.copy(s)} data-testid="server-copy">${this.copied === s.id ? 'Copied' : 'Copy address'}</button>
        ${s.connectUrl ? html`<a class="button" href=${s.connectUrl} data-testid="server-steam">Join with Steam</a>` : nothing}
      </div>
    </li>`;
  }

  protected override render() {
    const shown = visibleServers(this.servers, this.filter, this.sort);
    return html`<div class="grid">
      <section class="card">
        <div class="head">
          <h1>Servers</h1>
          <span class="muted" data-testid="servers-count">${this.servers.length} in the party</span>
        </div>
        <div class="controls">
          <input type="search" placeholder="Filter by name, game, map, host" aria-label="Filter servers" .value=${this.filter}
            @input=${(e: Event) => (this.filter = (e.target as HTMLInputElement).value)} data-testid="servers-filter" />
          <select aria-label="Sort servers" @change=${(e: Event) => (this.sort = (e.target as HTMLSelectElement).value as ServerSort)} data-testid="servers-sort">
            <option value="ping" ?selected=${this.sort === 'ping'}>Ping</option>
            <option value="players" ?selected=${this.sort === 'players'}>Players</option>
            <option value="name" ?selected=${this.sort === 'name'}>Name</option>
          </select>
        </div>
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      </section>
      ${shown.length
        ? html`<ul class="list" data-testid="servers-list">${shown.map((s) => this.row(s))}</ul>`
        : html`<section class="card muted" data-testid="servers-empty">
            ${this.servers.length
              ? 'No server matches the filter.'
              : 'No game servers in the party right now. A server appears here once it runs on any player’s machine: LANrage finds it by its process and asks it for its name, map and players.'}
          </section>`}
    </div>`;
  }
}

customElements.define('lr-servers-view', LrServersView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-servers-view': LrServersView;
  }
}
