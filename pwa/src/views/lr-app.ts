// The app shell: header, navigation, hash routing, and the switch to the helper-down page.
import { LitElement, css, html, nothing } from 'lit';
import { LiveController } from '../data/store-controller.js';
import { inviteFromPageUrl } from '../data/party.js';
import { onPairingOutcome, pairingOutcome, scopeLabel } from '../data/remote.js';
import { onRemote } from '../api/session.js';
import type { ConnectionState } from '../data/store.js';
import { shared } from '../styles/shared.js';
import './lr-status-view.js';
import './lr-settings-view.js';
import './lr-party-view.js';
import './lr-network-view.js';
import './lr-servers-view.js';
import './lr-games-view.js';
import './lr-helper-down.js';
import '../components/lr-update-prompt.js';

const ROUTES = [
  { id: 'status', label: 'Status' },
  { id: 'party', label: 'Party' },
  { id: 'servers', label: 'Servers' },
  { id: 'network', label: 'Network' },
  { id: 'games', label: 'Games' },
  { id: 'settings', label: 'Settings' },
] as const;
type Route = (typeof ROUTES)[number]['id'];

// Hash routes need nothing from the server: any URL the helper serves is index.html's.
// `#/join?invite=<lanrage link>` is the party page with the join form filled in: the link a
// friend clicks opens their own helper's page.
function routeFromHash(): Route {
  const id = window.location.hash.replace(/^#\/?/, '');
  if (id === 'join' || id.startsWith('join?')) return 'party';
  return ROUTES.find((r) => r.id === id)?.id ?? 'status';
}

const CONNECTION_LABEL: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  'helper-down': 'Helper offline',
};

export class LrApp extends LitElement {
  static override properties = { route: { state: true }, invite: { state: true } };
  declare route: Route;
  declare invite: string | undefined;

  private readonly live = new LiveController(this);
  private readonly onHash = (): void => {
    this.route = routeFromHash();
    this.invite = inviteFromPageUrl(window.location.hash);
  };

  constructor() {
    super();
    this.route = routeFromHash();
    this.invite = inviteFromPageUrl(window.location.hash);
  }

  static override styles = [
    shared,
    css`
      :host {
        min-height: 100vh;
        min-height: 100dvh;
      }
      header {
        position: sticky;
        top: 0;
        z-index: 5;
        background: color-mix(in srgb, var(--lr-bg) 88%, transparent);
        backdrop-filter: blur(10px);
        border-bottom: 1px solid var(--lr-border);
        padding-top: env(safe-area-inset-top);
      }
      .bar {
        max-width: 1180px;
        margin: 0 auto;
        display: flex;
        align-items: center;
        gap: 20px;
        padding: 10px max(16px, env(safe-area-inset-left));
        min-height: 58px;
      }
      .brand {
        display: flex;
        align-items: center;
        gap: 10px;
        font-weight: 800;
        font-size: 19px;
        letter-spacing: 0.01em;
        color: var(--lr-text);
        text-decoration: none;
      }
      .brand img {
        width: 30px;
        height: 30px;
      }
      nav {
        display: flex;
        gap: 4px;
      }
      nav a {
        color: var(--lr-muted);
        text-decoration: none;
        font-weight: 600;
        padding: 8px 14px;
        border-radius: 10px;
      }
      nav a:hover {
        color: var(--lr-text);
        background: var(--lr-surface);
      }
      nav a[aria-current='page'] {
        color: var(--lr-text);
        background: var(--lr-surface-2);
        box-shadow: inset 0 -2px 0 var(--lr-accent);
      }
      .conn {
        margin-left: auto;
        display: inline-flex;
        align-items: center;
        gap: 8px;
        font-size: 13px;
        font-weight: 600;
        padding: 5px 12px;
        border-radius: 999px;
        border: 1px solid var(--lr-border);
        background: var(--lr-surface);
        white-space: nowrap;
      }
      .conn::before {
        content: '';
        width: 8px;
        height: 8px;
        border-radius: 50%;
        background: var(--lr-muted);
      }
      .conn[data-state='live']::before {
        background: var(--lr-ok);
        box-shadow: 0 0 0 3px color-mix(in srgb, var(--lr-ok) 25%, transparent);
      }
      .conn[data-state='helper-down']::before {
        background: var(--lr-err);
      }
      .conn[data-state='connecting']::before {
        background: var(--lr-warn);
      }
      main {
        max-width: 1180px;
        margin: 0 auto;
        padding: 18px max(16px, env(safe-area-inset-left)) calc(28px + env(safe-area-inset-bottom));
      }
      /* Phones: navigation moves to a bottom tab bar within thumb reach. */
      @media (max-width: 640px) {
        /* A backdrop-filter would make the header the containing block of the fixed nav. */
        header {
          backdrop-filter: none;
          background: var(--lr-bg);
        }
        .bar {
          gap: 12px;
        }
        nav {
          position: fixed;
          z-index: 5;
          left: 0;
          right: 0;
          bottom: 0;
          justify-content: space-around;
          padding: 6px 8px calc(6px + env(safe-area-inset-bottom));
          background: color-mix(in srgb, var(--lr-surface) 94%, transparent);
          backdrop-filter: blur(10px);
          border-top: 1px solid var(--lr-border);
        }
        nav a {
          flex: 1;
          text-align: center;
          padding: 10px 0;
        }
        main {
          /* Read by views with sticky footers, which must sit above the tab bar. */
          --lr-bottom-offset: calc(62px + env(safe-area-inset-bottom));
          padding: 14px 12px calc(84px + env(safe-area-inset-bottom));
        }
      }
    `,
  ];

  private offPairing: (() => void) | undefined;

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    this.offPairing = onPairingOutcome(() => this.requestUpdate());
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('hashchange', this.onHash);
    this.offPairing?.();
  }

  private renderPairing() {
    const p = pairingOutcome();
    if (p.state === 'none' || (p.state === 'paired' && this.live.state.connection === 'helper-down')) return nothing;
    const text = p.state === 'paired' ? `This phone is paired (${scopeLabel(p.scope)}).` : p.message;
    return html`<p class="card" role=${p.state === 'failed' ? 'alert' : 'status'} data-testid="pair-result" data-state=${p.state}>${text}</p>`;
  }

  private renderView() {
    const { connection, lastError } = this.live.state;
    if (connection === 'helper-down') return html`<lr-helper-down .detail=${lastError} .remote=${onRemote()}></lr-helper-down>`;
    switch (this.route) {
      case 'settings':
        return html`<lr-settings-view></lr-settings-view>`;
      case 'party':
        return html`<lr-party-view .invite=${this.invite}></lr-party-view>`;
      case 'network':
        return html`<lr-network-view></lr-network-view>`;
      case 'servers':
        return html`<lr-servers-view></lr-servers-view>`;
      case 'games':
        return html`<lr-games-view></lr-games-view>`;
      default:
        return html`<lr-status-view></lr-status-view>`;
    }
  }

  protected override render() {
    const { connection, streamsOpened } = this.live.state;
    return html`
      <header>
        <div class="bar">
          <a class="brand" href="#/status"><img src="/icons/icon.svg" alt="" />LANrage</a>
          ${connection === 'helper-down'
            ? nothing
            : html`<nav aria-label="Main">
                ${ROUTES.map(
                  (r) => html`<a href="#/${r.id}" data-testid="nav-${r.id}"
                    aria-current=${r.id === this.route ? 'page' : 'false'}>${r.label}</a>`,
                )}
              </nav>`}
          <span class="conn" role="status" data-testid="conn-state" data-state=${connection}
            data-streams=${streamsOpened}>${CONNECTION_LABEL[connection]}</span>
        </div>
      </header>
      <main>${this.renderPairing()}${this.renderView()}</main>
      <lr-update-prompt></lr-update-prompt>
    `;
  }
}

customElements.define('lr-app', LrApp);

declare global {
  interface HTMLElementTagNameMap {
    'lr-app': LrApp;
  }
}
