// One player's figures under their row on the Party page: live RTT, jitter, loss, quality and
// traffic with a two-minute RTT chart, and on request the history (10 min, 24 h, 30 days) with
// the path changes. Renders data/peer-metrics.ts; holds only the open/closed state and the
// history it fetched.
import { LitElement, css, html, nothing, type TemplateResult } from 'lit';
import type { ChartPoint, ChartSeries } from '../components/lr-chart.js';
import { formatRate } from '../data/format.js';
import { formatRtt, PATH_LABEL } from '../data/party.js';
import { PathKind } from '../gen/lanrage/v1/peer.js';
import { HISTORY_RANGES, formatJitter, formatLoss, formatPps, getPeerHistory, qualityWord, type PeerHistory, type PeerMetricsSample } from '../data/peer-metrics.js';
import { shared } from '../styles/shared.js';
import '../components/lr-chart.js';

const LIVE_WINDOW_MS = 120_000;

function pts(samples: readonly PeerMetricsSample[], pick: (s: PeerMetricsSample) => number, skipZero = false): ChartPoint[] {
  return samples.filter((s) => s.time && (!skipZero || pick(s) > 0)).map((s) => ({ t: s.time!.getTime(), v: pick(s) }));
}

export class LrPeerMetrics extends LitElement {
  static override properties = {
    deviceId: { type: String, attribute: 'device-id' },
    series: { attribute: false },
    range: { state: true },
    history: { state: true },
    error: { state: true },
  };

  declare deviceId: string;
  declare series: readonly PeerMetricsSample[];
  declare range: number | undefined;
  declare history: PeerHistory | undefined;
  declare error: string;

  constructor() {
    super();
    this.deviceId = '';
    this.series = [];
    this.range = undefined;
    this.history = undefined;
    this.error = '';
  }

  static override styles = [
    shared,
    css`
      :host { display: block; grid-column: 1 / -1; }
      .figures { display: flex; flex-wrap: wrap; gap: 0.3rem 1.2rem; font-variant-numeric: tabular-nums; }
      .figures span { white-space: nowrap; }
      .label { color: var(--muted, #888); font-size: 0.8em; margin-right: 0.3em; }
      .ranges { display: flex; gap: 0.4rem; margin-top: 0.4rem; flex-wrap: wrap; }
      .ranges button[aria-pressed='true'] { font-weight: 600; }
      ul.changes { margin: 0.4rem 0 0; padding-left: 1.2rem; font-size: 0.85em; max-height: 8rem; overflow: auto; }
      lr-chart { height: 4rem; }
    `,
  ];

  private async show(seconds: number): Promise<void> {
    this.range = seconds;
    this.error = '';
    try {
      this.history = await getPeerHistory(this.deviceId, Date.now() - seconds * 1000);
    } catch (err) {
      this.history = undefined;
      this.error = err instanceof Error ? err.message : String(err);
    }
  }

  private renderHistory(): TemplateResult | typeof nothing {
    if (this.range === undefined) return nothing;
    const h = this.history;
    if (!h) return html`<p class="muted" data-testid="peer-history-loading">${this.error || 'Loading…'}</p>`;
    const rtt: ChartSeries[] = [{ label: 'RTT', color: 'var(--accent, #4a9)', points: pts(h.samples, (s) => s.rttMs, true) }];
    const traffic: ChartSeries[] = [
      { label: 'Download', color: 'var(--rx, #39f)', points: pts(h.samples, (s) => s.rxBytesPerSecond) },
      { label: 'Upload', color: 'var(--tx, #f93)', points: pts(h.samples, (s) => s.txBytesPerSecond) },
    ];
    return html`<div data-testid="peer-history" data-points=${h.samples.length} data-step=${h.stepSeconds}>
      <lr-chart label="Round trip over the chosen range" .series=${rtt} .windowMs=${this.range * 1000} .end=${Date.now()}
        .minMax=${1} .formatValue=${formatRtt} empty-text="No measurements in this range"></lr-chart>
      <lr-chart label="Traffic over the chosen range" .series=${traffic} .windowMs=${this.range * 1000} .end=${Date.now()}
        .minMax=${1000} .formatValue=${formatRate}></lr-chart>
      <span class="muted">${h.samples.length} points, ${h.stepSeconds} s each</span>
      ${h.changes.length > 0
        ? html`<ul class="changes" data-testid="peer-path-changes">
            ${h.changes.map((c) => html`<li>${c.time?.toLocaleString() ?? ''}: ${c.from === PathKind.PATH_KIND_UNSPECIFIED ? 'joined' : PATH_LABEL[c.from]} → ${PATH_LABEL[c.to]} (${c.reason})</li>`)}
          </ul>`
        : nothing}
    </div>`;
  }

  protected override render(): TemplateResult {
    const last = this.series.at(-1);
    const rttSeries: ChartSeries[] = [{ label: 'RTT', color: 'var(--accent, #4a9)', points: pts(this.series, (s) => s.rttMs, true) }];
    return html`
      <div class="figures" data-testid="peer-metrics" data-rtt=${last?.rttMs ?? 0} data-quality=${last?.quality ?? 0}
        data-rx-bps=${last?.rxBytesPerSecond ?? 0} data-tx-bps=${last?.txBytesPerSecond ?? 0}>
        <span><span class="label">RTT</span><span data-testid="peer-rtt">${formatRtt(last?.rttMs ?? 0)}</span></span>
        <span><span class="label">Jitter</span><span data-testid="peer-jitter">${last && last.rttMs > 0 ? formatJitter(last.jitterMs) : '—'}</span></span>
        <span><span class="label">Loss</span><span data-testid="peer-loss">${last ? formatLoss(last.lossRatio) : '—'}</span></span>
        <span><span class="label">Quality</span><span data-testid="peer-quality"
          title="100 − 0.5 per ms of RTT above 20 ms − 1 per ms of jitter − 5 per % of loss">${last && last.quality > 0 ? `${Math.round(last.quality)} (${qualityWord(last.quality)})` : '—'}</span></span>
        <span><span class="label">↓</span><span data-testid="peer-rx">${last ? `${formatRate(last.rxBytesPerSecond)} · ${formatPps(last.rxPacketsPerSecond)}` : '—'}</span></span>
        <span><span class="label">↑</span><span data-testid="peer-tx">${last ? `${formatRate(last.txBytesPerSecond)} · ${formatPps(last.txPacketsPerSecond)}` : '—'}</span></span>
      </div>
      <lr-chart data-testid="peer-rtt-chart" label="Round trip, last two minutes" .series=${rttSeries} .windowMs=${LIVE_WINDOW_MS}
        .minMax=${1} .formatValue=${formatRtt} empty-text="Waiting for the first round trip"></lr-chart>
      <div class="ranges" role="group" aria-label="History">
        <span class="label">History</span>
        ${HISTORY_RANGES.map(
          (r) => html`<button type="button" class="secondary" data-testid="peer-history-${r.seconds}" aria-pressed=${String(this.range === r.seconds)}
            @click=${() => void this.show(r.seconds)}>${r.label}</button>`,
        )}
        ${this.range !== undefined
          ? html`<button type="button" class="secondary" @click=${() => { this.range = undefined; this.history = undefined; }}>Hide</button>`
          : nothing}
      </div>
      ${this.renderHistory()}
    `;
  }
}

customElements.define('lr-peer-metrics', LrPeerMetrics);

declare global {
  interface HTMLElementTagNameMap {
    'lr-peer-metrics': LrPeerMetrics;
  }
}
