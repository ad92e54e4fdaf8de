// Party: create or join one; once in, the invite (link, link for browsers, QR), the players and
// how this machine reaches each of them, with ping, kick and leave. Renders the store and calls
// data/party.ts; holds only form drafts and per-click results.
import { LitElement, css, html, nothing, type PropertyValues, type TemplateResult } from 'lit';
import { LiveController } from '../data/store-controller.js';
import {
  DEFAULT_PING_COUNT,
  PATH_LABEL,
  createParty,
  describePartyError,
  formatRtt,
  friendsBrowserLink,
  inviteReachNotice,
  inviteText,
  isAway,
  joinParty,
  kickMember,
  leaveParty,
  parseInviteLink,
  partyNameError,
  pathState,
  pingPeer,
  selfIsHost,
  sortedMembers,
  summarizePing,
  type Party,
  type PartyAction,
  type PartyMember,
  type Peer,
} from '../data/party.js';
import { formatBytes } from '../data/format.js';
import { lanSummary } from '../data/lan.js';
import { shared } from '../styles/shared.js';
import '../components/lr-qr.js';
import './lr-peer-metrics.js';

interface PingState {
  readonly pending: boolean;
  readonly text: string;
  readonly ok: boolean;
}

type Failure = { readonly action: PartyAction; readonly message: string } | undefined;
type Copied = 'invite' | 'friend' | undefined;

const COPIED_MS = 2_000;

function suggestedName(deviceName: string | undefined): string {
  const name = deviceName?.trim() ?? '';
  const suggestion = name ? `${name}'s party` : 'LAN party';
  return partyNameError(suggestion) === undefined ? suggestion : 'LAN party';
}

export class LrPartyView extends LitElement {
  static override properties = {
    invite: { type: String },
    nameDraft: { state: true },
    linkDraft: { state: true },
    busy: { state: true },
    failure: { state: true },
    pings: { state: true },
    confirm: { state: true },
    copied: { state: true },
    ended: { state: true },
  };

  /** An invite handed over by the `#/join?invite=…` route: pre-fills the join form. */
  declare invite: string | undefined;
  /** undefined until the player types, so the suggestion can follow the device name. */
  declare nameDraft: string | undefined;
  declare linkDraft: string | undefined;
  declare busy: PartyAction | undefined;
  declare failure: Failure;
  declare pings: ReadonlyMap<string, PingState>;
  /** 'leave', or the device id whose removal awaits a second click. */
  declare confirm: string | undefined;
  declare copied: Copied;
  /** Name of a party that ended without this page leaving it (kicked, or left from elsewhere). */
  declare ended: string | undefined;

  private readonly live = new LiveController(this);
  private copiedTimer: ReturnType<typeof setTimeout> | undefined;
  private lastParty: Party | undefined;
  /** Set while this page's own Leave is under way, so its result is not reported as news. */
  private leftHere = false;

  constructor() {
    super();
    this.invite = undefined;
    this.nameDraft = undefined;
    this.linkDraft = undefined;
    this.busy = undefined;
    this.failure = undefined;
    this.pings = new Map();
    this.confirm = undefined;
    this.copied = undefined;
    this.ended = undefined;
  }

  static override styles = [
    shared,
    css`
      .two {
        display: grid;
        gap: 14px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 340px), 1fr));
        align-items: start;
      }
      h1 {
        font-size: clamp(22px, 4vw, 30px);
        font-weight: 700;
        margin: 0;
        overflow-wrap: anywhere;
      }
      p {
        margin: 0 0 12px;
        line-height: 1.45;
      }
      form {
        display: grid;
        gap: 8px;
      }
      label {
        font-weight: 600;
        font-size: 14px;
      }
      input[readonly] {
        font-family: var(--lr-mono);
        font-size: 13px;
        color: var(--lr-muted);
      }
      .hint {
        font-size: 12.5px;
        color: var(--lr-muted);
        line-height: 1.4;
      }
      .err {
        font-size: 13.5px;
        color: var(--lr-err);
        line-height: 1.4;
      }
      .err:empty {
        display: none;
      }
      .row {
        display: flex;
        gap: 8px;
        align-items: center;
        flex-wrap: wrap;
      }
      .row > input {
        flex: 1 1 200px;
      }
      .invited {
        border-color: color-mix(in srgb, var(--lr-accent) 55%, var(--lr-border));
      }
      .notice {
        border-color: color-mix(in srgb, var(--lr-warn) 45%, var(--lr-border));
      }
      .head {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 10px 14px;
      }
      .head .facts {
        flex: 1 1 100%;
        display: flex;
        flex-wrap: wrap;
        gap: 4px 16px;
        font-size: 14px;
        color: var(--lr-muted);
      }
      .head .actions {
        margin-left: auto;
        display: flex;
        gap: 8px;
        flex-wrap: wrap;
        align-items: center;
      }
      .badge {
        display: inline-block;
        font-size: 11.5px;
        font-weight: 700;
        letter-spacing: 0.04em;
        text-transform: uppercase;
        padding: 2px 8px;
        border-radius: 999px;
        border: 1px solid var(--lr-border);
        background: var(--lr-surface-2);
        color: var(--lr-muted);
        vertical-align: middle;
      }
      .badge.host {
        color: var(--lr-accent-2);
        border-color: color-mix(in srgb, var(--lr-accent-2) 45%, var(--lr-border));
      }
      .badge.you {
        color: var(--lr-rx);
        border-color: color-mix(in srgb, var(--lr-rx) 45%, var(--lr-border));
      }
      .badge.away {
        color: var(--lr-warn);
        border-color: color-mix(in srgb, var(--lr-warn) 45%, var(--lr-border));
      }
      .invite {
        display: grid;
        gap: 16px 22px;
        grid-template-columns: 200px 1fr;
        align-items: start;
      }
      .invite lr-qr {
        width: 200px;
      }
      .field {
        display: grid;
        gap: 6px;
        min-width: 0;
      }
      .links {
        display: grid;
        gap: 14px;
        min-width: 0;
      }
      .copied {
        font-size: 13px;
        color: var(--lr-ok);
      }
      /* One column grid shared by every row (subgrid), so paths, endpoints and RTTs line up. */
      ul.members {
        list-style: none;
        margin: 0;
        padding: 0;
        display: grid;
        grid-template-columns: minmax(150px, 1.2fr) minmax(150px, 1.1fr) minmax(130px, 1fr) max-content max-content;
        gap: 10px 16px;
      }
      li.member {
        grid-column: 1 / -1;
        display: grid;
        grid-template-columns: subgrid;
        row-gap: 6px;
        align-items: center;
        padding: 12px 14px;
        border: 1px solid var(--lr-border);
        border-radius: 12px;
        background: var(--lr-bg);
      }
      .who {
        min-width: 0;
      }
      .who .name {
        font-weight: 700;
        overflow-wrap: anywhere;
        margin-right: 4px;
      }
      .ip {
        font-family: var(--lr-mono);
        font-size: 13px;
        color: var(--lr-muted);
      }
      .cell-label {
        display: none;
        font-size: 12px;
        color: var(--lr-muted);
      }
      .path {
        display: inline-flex;
        align-items: center;
        gap: 7px;
        font-weight: 600;
      }
      .path::before {
        content: '';
        width: 9px;
        height: 9px;
        border-radius: 50%;
        background: var(--lr-muted);
        flex: none;
      }
      .path[data-path='direct']::before {
        background: var(--lr-ok);
      }
      .path[data-path='relayed']::before {
        background: var(--lr-rx);
      }
      .path[data-path='connecting']::before {
        background: var(--lr-warn);
      }
      .path[data-path='unreachable']::before {
        background: var(--lr-err);
      }
      .reason {
        font-size: 12.5px;
        color: var(--lr-muted);
        line-height: 1.35;
        overflow-wrap: anywhere;
      }
      .endpoint {
        font-family: var(--lr-mono);
        font-size: 13px;
        overflow-wrap: anywhere;
      }
      .rtt {
        font-variant-numeric: tabular-nums;
        font-weight: 600;
        white-space: nowrap;
      }
      .member-actions {
        display: flex;
        gap: 8px;
        justify-content: flex-end;
        flex-wrap: wrap;
      }
      .member-actions button,
      .head .actions button {
        padding: 8px 14px;
        min-height: 36px;
      }
      button.danger {
        color: var(--lr-err);
        background: transparent;
        border: 1px solid color-mix(in srgb, var(--lr-err) 55%, var(--lr-border));
      }
      button.danger.armed {
        color: #160607;
        background: var(--lr-err);
      }
      .ping-result {
        grid-column: 1 / -1;
        font-size: 13.5px;
        font-variant-numeric: tabular-nums;
      }
      .ping-result[data-ok='false'] {
        color: var(--lr-err);
      }
      .ping-result:empty,
      .row-error:empty {
        display: none;
      }
      .row-error {
        grid-column: 1 / -1;
        font-size: 13.5px;
        color: var(--lr-err);
      }
      .traffic {
        font-size: 12.5px;
        color: var(--lr-muted);
        font-variant-numeric: tabular-nums;
      }
      @media (max-width: 760px) {
        .invite {
          grid-template-columns: 1fr;
          justify-items: center;
        }
        .invite .links {
          width: 100%;
        }
        .invite lr-qr {
          width: min(220px, 70vw);
        }
        ul.members {
          grid-template-columns: 1fr;
        }
        li.member {
          grid-template-columns: 1fr auto;
          gap: 6px 12px;
        }
        .who,
        .path-cell {
          grid-column: 1 / -1;
        }
        .cell-label {
          display: block;
        }
        .member-actions {
          grid-column: 1 / -1;
          justify-content: flex-start;
        }
      }
    `,
  ];

  protected override willUpdate(changed: PropertyValues<this>): void {
    // A newly opened invite link replaces whatever was typed into the join form.
    if (changed.has('invite') && this.invite !== undefined) {
      this.linkDraft = undefined;
      if (this.failure?.action === 'join') this.failure = undefined;
    }
    const party = this.live.state.party;
    if (party) this.ended = undefined;
    else if (this.lastParty) {
      if (!this.leftHere) this.ended = this.lastParty.name;
      this.leftHere = false;
    }
    if (party?.id !== this.lastParty?.id) {
      this.pings = new Map();
      this.confirm = undefined;
    }
    this.lastParty = party;
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.copiedTimer);
  }

  // ---- actions ----------------------------------------------------------------------------

  private async run(action: PartyAction, work: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.busy = action;
    this.failure = undefined;
    try {
      await work();
    } catch (err) {
      this.failure = { action, message: describePartyError(err, action) };
    } finally {
      this.busy = undefined;
    }
  }

  private create(e: Event, name: string): void {
    e.preventDefault();
    if (partyNameError(name) !== undefined) return;
    void this.run('create', async () => {
      await createParty(name);
      this.nameDraft = undefined;
    });
  }

  private join(e: Event, link: string): void {
    e.preventDefault();
    if (typeof parseInviteLink(link) === 'string') return;
    void this.run('join', async () => {
      await joinParty(link);
      this.linkDraft = undefined;
      // The invite URL has done its job; a reload must not offer to join again.
      if (window.location.hash.startsWith('#/join')) {
        history.replaceState(null, '', '#/party');
        this.invite = undefined;
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      }
    });
  }

  private leave(): void {
    if (this.confirm !== 'leave') {
      this.confirm = 'leave';
      return;
    }
    this.confirm = undefined;
    this.leftHere = true;
    void this.run('leave', leaveParty).then(() => {
      if (this.failure) this.leftHere = false;
    });
  }

  private kick(member: PartyMember): void {
    if (this.confirm !== member.deviceId) {
      this.confirm = member.deviceId;
      return;
    }
    this.confirm = undefined;
    void this.run('kick', () => kickMember(member.deviceId));
  }

  private async ping(member: PartyMember): Promise<void> {
    if (this.pings.get(member.deviceId)?.pending) return;
    this.setPing(member.deviceId, { pending: true, text: `Pinging ${member.name}…`, ok: true });
    try {
      const results = await pingPeer(member.deviceId, DEFAULT_PING_COUNT);
      this.setPing(member.deviceId, { pending: false, text: summarizePing(results), ok: results.some((r) => r.answered) });
    } catch (err) {
      this.setPing(member.deviceId, { pending: false, text: describePartyError(err, 'ping'), ok: false });
    }
  }

  private setPing(deviceId: string, state: PingState): void {
    const next = new Map(this.pings);
    next.set(deviceId, state);
    this.pings = next;
  }

  private async copy(text: string, which: Exclude<Copied, undefined>, input: HTMLInputElement | null): Promise<void> {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (an embedded browser, say): select the text so a long press or
      // Ctrl+C finishes the job, and try the old command, which works on a user gesture.
      input?.focus();
      input?.select();
      if (!document.execCommand('copy')) return;
    }
    this.copied = which;
    clearTimeout(this.copiedTimer);
    this.copiedTimer = setTimeout(() => (this.copied = undefined), COPIED_MS);
  }

  // ---- rendering --------------------------------------------------------------------------

  private errorFor(action: PartyAction): string {
    return this.failure?.action === action ? this.failure.message : '';
  }

  private renderOutside(): TemplateResult {
    const status = this.live.state.status;
    const name = this.nameDraft ?? suggestedName(status?.deviceName);
    const nameError = partyNameError(name);
    const link = this.linkDraft ?? this.invite ?? '';
    const parsed = link.trim() === '' ? undefined : parseInviteLink(link);
    const linkError = typeof parsed === 'string' ? parsed : undefined;
    const invited = this.invite !== undefined && this.linkDraft === undefined;
    const busy = this.busy !== undefined;

    const joinCard = html`
      <section class="card ${invited ? 'invited' : ''}" aria-labelledby="join-title" data-testid="join-card">
        <h2 id="join-title">${invited ? 'You were invited to a party' : 'Join a party'}</h2>
        <p class="muted">
          ${invited
            ? 'Check that this link came from a friend, then join. Your helper connects to the party server it names.'
            : 'Paste the invite link a friend sent you.'}
        </p>
        <form novalidate @submit=${(e: Event) => this.join(e, link)}>
          <label for="join-link">Invite link</label>
          <input
            type="text"
            id="join-link"
            data-testid="join-link"
            .value=${link}
            placeholder="lanrage://join?c=…&p=…&s=…"
            autocomplete="off"
            spellcheck="false"
            aria-invalid=${linkError ? 'true' : 'false'}
            aria-describedby="join-hint join-error"
            @input=${(e: Event) => {
              this.linkDraft = (e.target as HTMLInputElement).value;
              if (this.failure?.action === 'join') this.failure = undefined;
            }}
          />
          <span class="hint" id="join-hint">
            ${parsed && typeof parsed !== 'string'
              ? html`Party server: <code data-testid="join-server">${parsed.controlUrl}</code>`
              : 'It starts with lanrage://join?'}
          </span>
          <span class="err" id="join-error" data-testid="join-error" role="alert">${linkError ?? this.errorFor('join')}</span>
          <div class="row">
            <button type="submit" data-testid="join-submit" ?disabled=${busy || parsed === undefined || linkError !== undefined}>
              ${this.busy === 'join' ? 'Joining…' : 'Join party'}
            </button>
          </div>
        </form>
      </section>
    `;
    const createCard = html`
      <section class="card" aria-labelledby="create-title" data-testid="create-card">
        <h2 id="create-title">Create a party</h2>
        <p class="muted">You become its host: you get an invite link to send to your friends.</p>
        <form novalidate @submit=${(e: Event) => this.create(e, name)}>
          <label for="create-name">Party name</label>
          <input
            type="text"
            id="create-name"
            data-testid="create-name"
            .value=${name}
            maxlength="60"
            autocomplete="off"
            aria-invalid=${nameError ? 'true' : 'false'}
            aria-describedby="create-hint create-error"
            @input=${(e: Event) => {
              this.nameDraft = (e.target as HTMLInputElement).value;
              if (this.failure?.action === 'create') this.failure = undefined;
            }}
          />
          <span class="hint" id="create-hint">1–48 characters: letters, digits, spaces and . _ ' ! -, starting with a letter or digit.</span>
          <span class="err" id="create-error" data-testid="create-error" role="alert">${nameError ?? this.errorFor('create')}</span>
          <div class="row">
            <button type="submit" data-testid="create-submit" ?disabled=${busy || nameError !== undefined}>
              ${this.busy === 'create' ? 'Creating…' : 'Create party'}
            </button>
          </div>
        </form>
      </section>
    `;
    return html`<div class="grid" data-testid="party-view" data-in-party="false">
      ${this.ended
        ? html`<section class="card notice" role="status" data-testid="party-ended">
            <p>
              You are no longer in <strong>${this.ended}</strong>: the host removed you, or the party was left from
              another window or the command line.
            </p>
          </section>`
        : nothing}
      <div class="two">${invited ? html`${joinCard}${createCard}` : html`${createCard}${joinCard}`}</div>
    </div>`;
  }

  private renderLink(
    label: string,
    hint: string,
    value: string,
    which: Exclude<Copied, undefined>,
  ): TemplateResult {
    const id = `link-${which}`;
    return html`<div class="field">
      <label for=${id}>${label}</label>
      <div class="row">
        <input type="text" readonly id=${id} data-testid="${which}-link" .value=${value}
          aria-describedby="${id}-hint" @focus=${(e: Event) => (e.target as HTMLInputElement).select()} />
        <button type="button" class="secondary" data-testid="${which}-copy"
          @click=${(e: Event) => {
            const input = (e.target as HTMLElement).parentElement?.querySelector('input') ?? null;
            void this.copy(value, which, input);
          }}>
          Copy
        </button>
        <span class="copied" role="status" data-testid="${which}-copied">${this.copied === which ? 'Copied' : ''}</span>
      </div>
      <span class="hint" id="${id}-hint">${hint}</span>
    </div>`;
  }

  private renderMember(m: PartyMember, peer: Peer | undefined, canKick: boolean): TemplateResult {
    const ping = this.pings.get(m.deviceId);
    const badges = html`${m.isSelf ? html`<span class="badge you">you</span>` : nothing}
      ${m.isHost ? html`<span class="badge host">host</span>` : nothing}
      ${isAway(m) ? html`<span class="badge away" title="No heartbeat from this player for a while">away</span>` : nothing}`;
    const who = html`<div class="who">
      <span class="name" data-testid="member-name">${m.name}</span>${badges}
      <div class="ip" data-testid="member-ip">${m.virtualIp || 'no address yet'}</div>
    </div>`;
    if (m.isSelf) {
      return html`<li class="member" data-testid="member" data-device-id=${m.deviceId} data-self="true"
        data-host=${String(m.isHost)}>
        ${who}
        <div class="path-cell reason">This device</div>
      </li>`;
    }
    // A member the helper has no peer entry for yet is still being set up.
    const state = peer ? pathState(peer.path) : 'connecting';
    const label = peer ? PATH_LABEL[peer.path] : 'Connecting';
    const reason = peer?.pathReason || (peer ? '' : 'Waiting for this player’s connection details.');
    const armed = this.confirm === m.deviceId;
    const series = this.live.state.peerSeries.get(m.deviceId) ?? [];
    // The live median RTT when the helper measured one; the path's last RTT otherwise.
    const rtt = (series.at(-1)?.rttMs ?? 0) > 0 ? series.at(-1)!.rttMs : (peer?.rttMs ?? 0);
    return html`<li class="member" data-testid="member" data-device-id=${m.deviceId} data-self="false"
      data-host=${String(m.isHost)}>
      ${who}
      <div class="path-cell">
        <span class="cell-label">Path</span>
        <span class="path" data-testid="member-path" data-path=${state}>${label}${peer?.fastPath ? html`<span class="badge" title="WireGuard sends straight to the network, bypassing the helper">fast path</span>` : nothing}</span>
        <div class="reason" data-testid="member-path-reason">${reason}</div>
      </div>
      <div>
        <span class="cell-label">Endpoint</span>
        <div class="endpoint" data-testid="member-endpoint">${peer?.endpoint || '—'}</div>
        ${peer && (peer.rxBytes > 0 || peer.txBytes > 0)
          ? html`<div class="traffic" data-testid="member-traffic">↓ ${formatBytes(peer.rxBytes)} · ↑ ${formatBytes(peer.txBytes)}</div>`
          : nothing}
      </div>
      <div>
        <span class="cell-label">Round trip</span>
        <span class="rtt" data-testid="member-rtt" data-rtt=${rtt}>${formatRtt(rtt)}</span>
      </div>
      <div class="member-actions">
        <button type="button" class="secondary" data-testid="ping-button" ?disabled=${ping?.pending === true}
          @click=${() => void this.ping(m)}>${ping?.pending ? 'Pinging…' : 'Ping'}</button>
        ${canKick
          ? html`<button type="button" class="danger ${armed ? 'armed' : ''}" data-testid="kick-button"
                ?disabled=${this.busy !== undefined} @click=${() => this.kick(m)}>
                ${this.busy === 'kick' && armed ? 'Removing…' : armed ? 'Really kick?' : 'Kick'}
              </button>
              ${armed
                ? html`<button type="button" class="secondary" @click=${() => (this.confirm = undefined)}>Cancel</button>`
                : nothing}`
          : nothing}
      </div>
      <div class="ping-result" role="status" data-testid="ping-result" data-ok=${ping ? String(ping.ok) : ''}
        data-pending=${String(ping?.pending ?? false)}>${ping?.text ?? ''}</div>
      <lr-peer-metrics device-id=${m.deviceId} .series=${series}></lr-peer-metrics>
    </li>`;
  }

  private renderInvite(link: string, party: Party): TemplateResult {
    const reach = inviteReachNotice(party);
    return html`
      <section class="card ${reach?.warn ? 'notice' : ''}" aria-labelledby="invite-title" data-testid="invite-card">
        <h2 id="invite-title">Invite friends</h2>
        ${reach ? html`<p role=${reach.warn ? 'alert' : 'status'} data-testid="invite-reach" data-lan-only=${String(reach.warn)}>${reach.text}</p>` : nothing}
        <div class="invite">
          <lr-qr data-testid="invite-qr" .value=${link} label="QR code of the invite link"></lr-qr>
          <div class="links">
            ${this.renderLink(
              'Invite link',
              'Paste it into LANrage (Party → Join) or run: lanrage join LINK. Anyone with it can join: share it only with friends.',
              link,
              'invite',
            )}
            ${this.renderLink(
              "Link for friends' browsers",
              'Opens the join page of LANrage on the friend’s own computer (their helper on port 8666).',
              friendsBrowserLink(link),
              'friend',
            )}
          </div>
        </div>
      </section>
    `;
  }

  private renderInside(party: Party): TemplateResult {
    const { peers } = this.live.state;
    const host = selfIsHost(party);
    const members = sortedMembers(party);
    const others = members.filter((m) => !m.isSelf).length;
    const otherInvite = this.invite !== undefined && inviteText(this.invite) !== party.inviteLink;
    return html`<div class="grid" data-testid="party-view" data-in-party="true">
      ${otherInvite
        ? html`<section class="card notice" role="status" data-testid="other-invite">
            <p>
              You opened an invite to another party, but you are in <strong>${party.name}</strong>. Leave this party
              first; the invite will then be ready to join.
            </p>
          </section>`
        : nothing}
      <section class="card" aria-labelledby="party-name">
        <div class="head">
          <h1 id="party-name" data-testid="party-name">${party.name}</h1>
          ${host ? html`<span class="badge host">you host</span>` : nothing}
          <div class="actions">
            <button type="button" class="danger ${this.confirm === 'leave' ? 'armed' : ''}" data-testid="leave-button"
              ?disabled=${this.busy !== undefined} @click=${() => this.leave()}>
              ${this.busy === 'leave' ? 'Leaving…' : this.confirm === 'leave' ? 'Really leave?' : 'Leave party'}
            </button>
            ${this.confirm === 'leave'
              ? html`<button type="button" class="secondary" data-testid="leave-cancel" @click=${() => (this.confirm = undefined)}>Cancel</button>`
              : nothing}
          </div>
          <div class="facts">
            <span data-testid="member-count">${members.length} ${members.length === 1 ? 'player' : 'players'}</span>
            <span>Virtual LAN <code>${party.networkCidr || '—'}</code></span>
            ${host ? nothing : html`<span>Host: ${party.members.find((m) => m.isHost)?.name ?? '—'}</span>`}
            <span data-testid="lan-discovery" data-enabled=${String(this.live.state.lan?.enabled ?? false)}
              title="Game broadcasts and multicasts (LAN server lists, mDNS) carried to and from the other players">
              LAN discovery: ${lanSummary(this.live.state.lan)}</span>
          </div>
        </div>
        <span class="err" data-testid="party-error" role="alert">${this.errorFor('leave') || this.errorFor('kick')}</span>
      </section>
      ${party.inviteLink ? this.renderInvite(party.inviteLink, party) : nothing}
      <section class="card" aria-labelledby="members-title">
        <h2 id="members-title">Players</h2>
        ${others === 0
          ? html`<p class="muted" data-testid="alone">Nobody else is here yet: send your friends the invite.</p>`
          : nothing}
        <ul class="members" data-testid="members">
          ${members.map((m) => this.renderMember(m, peers.get(m.deviceId), host && !m.isSelf))}
        </ul>
      </section>
    </div>`;
  }

  protected override render() {
    const { partyKnown, party } = this.live.state;
    if (!partyKnown) {
      return html`<section class="card" data-testid="party-view" data-in-party="unknown">
        <p class="muted">Asking the helper about your party…</p>
      </section>`;
    }
    return party ? this.renderInside(party) : this.renderOutside();
  }
}

customElements.define('lr-party-view', LrPartyView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-party-view': LrPartyView;
  }
}
