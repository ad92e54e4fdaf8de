// Network: the NAT report (netcheck), live from the Watch stream, and a button to test again.
import { LitElement, css, html, nothing } from 'lit';
import { LiveController } from '../data/store-controller.js';
import { describeFiltering, describeMapping, describeUdp, getNatReport, runNetcheck, UdpReachability, type Described } from '../data/network.js';
import { formatClock } from '../data/format.js';
import { Code, toApiError } from '../api/errors.js';
import { shared } from '../styles/shared.js';

export class LrNetworkView extends LitElement {
  static override properties = { running: { state: true }, error: { state: true } };
  declare running: boolean;
  declare error: string | undefined;

  private readonly live = new LiveController(this);

  constructor() {
    super();
    this.running = false;
    this.error = undefined;
  }

  static override styles = [
    shared,
    css`
      .head {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        justify-content: space-between;
        gap: 10px;
      }
      .head h1 {
        margin: 0;
        font-size: clamp(22px, 4vw, 28px);
      }
      .facts {
        display: grid;
        gap: 14px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 240px), 1fr));
      }
      .value {
        font-size: 20px;
        font-weight: 700;
        margin: 4px 0;
        overflow-wrap: anywhere;
      }
      .value::before {
        content: '';
        display: inline-block;
        width: 10px;
        height: 10px;
        border-radius: 50%;
        margin-right: 8px;
        vertical-align: middle;
        background: var(--lr-muted);
      }
      .value[data-tone='good']::before {
        background: var(--lr-ok);
      }
      .value[data-tone='fair']::before {
        background: var(--lr-warn);
      }
      .value[data-tone='poor']::before {
        background: var(--lr-err);
      }
      .value.plain::before {
        display: none;
      }
      .detail {
        font-size: 14px;
        color: var(--lr-muted);
      }
      ul {
        margin: 0;
        padding-left: 20px;
      }
      .error {
        color: var(--lr-err);
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    // The stream brings the report too; this fills the page at once if the stream is slower.
    getNatReport().catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.running = true;
    this.error = undefined;
    try {
      await runNetcheck();
    } catch (err) {
      const e = toApiError(err);
      this.error = e.code === Code.FAILED_PRECONDITION ? e.message : `The test failed: ${e.message}`;
    } finally {
      this.running = false;
    }
  }

  private fact(title: string, d: Described, testid: string) {
    return html`<section class="card" aria-label=${title}>
      <h2>${title}</h2>
      <div class="value" data-tone=${d.tone} data-testid=${testid}>${d.label}</div>
      <div class="detail">${d.detail}</div>
    </section>`;
  }

  protected override render() {
    const r = this.live.state.natReport;
    const blocked = r?.udp === UdpReachability.UDP_REACHABILITY_BLOCKED;
    return html`<div class="grid">
      <section class="card">
        <div class="head">
          <div>
            <h1>Network</h1>
            <div class="muted" data-testid="nat-time">
              ${r ? html`Tested ${formatClock(r.time)}${r.stunServer ? html` against <code>${r.stunServer}</code>` : nothing}` : 'Not tested yet: the test runs once this helper is connected to a control server (create or join a party).'}
            </div>
          </div>
          <button @click=${() => this.run()} ?disabled=${this.running} data-testid="run-netcheck">${this.running ? 'Testing…' : 'Test again'}</button>
        </div>
        ${this.error ? html`<p class="error" role="alert" data-testid="netcheck-error">${this.error}</p>` : nothing}
      </section>
      ${r
        ? html`<div class="facts">
              ${this.fact('UDP', describeUdp(r.udp), 'nat-udp')}
              ${blocked ? nothing : this.fact('NAT mapping', describeMapping(r.mapping), 'nat-mapping')}
              ${blocked ? nothing : this.fact('NAT filtering', describeFiltering(r.filtering), 'nat-filtering')}
              <section class="card" aria-label="Public address">
                <h2>Public address</h2>
                <div class="value plain" data-testid="nat-public">${r.publicAddress || '—'}</div>
                <div class="detail">${r.publicAddress ? (r.portPreserved ? 'The router kept the local port.' : 'The router changed the local port.') : ''}</div>
              </section>
              <section class="card" aria-label="Local addresses">
                <h2>Local addresses</h2>
                <div class="value plain" data-testid="nat-local">${r.localAddresses.join(', ') || '—'}</div>
              </section>
              <section class="card" aria-label="Port mapping and relays">
                <h2>Port mapping · relays</h2>
                <div class="detail">
                  UPnP / NAT-PMP / PCP: ${r.portMapping.length ? `${r.portMapping.length} answered` : 'none answered'}.
                  <span data-testid="nat-relays">Relay latency: ${r.relays.length
                    ? r.relays.map((x) => `${x.relay} ${x.answered ? `${x.rttMs.toFixed(1)} ms` : 'no answer'}${x.inUse ? ' (in use)' : ''}`).join(', ')
                    : 'no relay offered (only to party members)'}.</span>
                </div>
              </section>
            </div>
            ${r.notes.length
              ? html`<section class="card" aria-label="Notes"><h2>Notes</h2><ul data-testid="nat-notes">${r.notes.map((n) => html`<li>${n}</li>`)}</ul></section>`
              : nothing}`
        : nothing}
    </div>`;
  }
}

customElements.define('lr-network-view', LrNetworkView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-network-view': LrNetworkView;
  }
}
