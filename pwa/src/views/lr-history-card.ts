// Downsampled history (GetMetricsHistory) over a chosen range, refreshed while shown.
import { LitElement, css, html, nothing } from 'lit';
import { getMetricsHistory, memoryPercent, type MetricsHistory, type MetricsSample } from '../data/metrics.js';
import { formatRate } from '../data/format.js';
import type { ChartPoint, ChartSeries } from '../components/lr-chart.js';
import { shared } from '../styles/shared.js';
import '../components/lr-chart.js';

const RANGES = [
  { id: '1h', label: '1 hour', ms: 3_600_000 },
  { id: '24h', label: '24 hours', ms: 86_400_000 },
] as const;
type RangeId = (typeof RANGES)[number]['id'];

const REFRESH_MS = 60_000;
const pct = (v: number): string => `${Math.round(v)} %`;

function series(samples: readonly MetricsSample[], pick: (s: MetricsSample) => number): ChartPoint[] {
  return samples.filter((s) => s.time).map((s) => ({ t: s.time!.getTime(), v: pick(s) }));
}

export class LrHistoryCard extends LitElement {
  static override properties = {
    range: { state: true },
    history: { state: true },
    error: { state: true },
    fetchedAt: { state: true },
  };

  declare range: RangeId;
  declare history: MetricsHistory | undefined;
  declare error: string | undefined;
  declare fetchedAt: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private request = 0;

  constructor() {
    super();
    this.range = '1h';
    this.history = undefined;
    this.error = undefined;
    this.fetchedAt = Date.now();
  }

  static override styles = [
    shared,
    css`
      .head {
        display: flex;
        justify-content: space-between;
        align-items: center;
        gap: 10px;
        flex-wrap: wrap;
        margin-bottom: 12px;
      }
      .head h2 {
        margin: 0;
      }
      .seg {
        display: inline-flex;
        border: 1px solid var(--lr-border);
        border-radius: 10px;
        overflow: hidden;
      }
      .seg button {
        border-radius: 0;
        background: var(--lr-surface-2);
        color: var(--lr-muted);
        padding: 6px 14px;
        min-height: 34px;
        font-weight: 500;
      }
      .seg button[aria-pressed='true'] {
        background: var(--lr-accent);
        color: #140a0c;
        font-weight: 700;
      }
      .charts {
        display: grid;
        gap: 16px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 240px), 1fr));
      }
      h3 {
        font-size: 13px;
        font-weight: 500;
        color: var(--lr-muted);
        margin: 0 0 6px;
      }
      .note {
        font-size: 12px;
        margin: 10px 0 0;
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
    this.timer = setInterval(() => void this.load(), REFRESH_MS);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearInterval(this.timer);
  }

  private rangeMs(): number {
    return RANGES.find((r) => r.id === this.range)?.ms ?? RANGES[0].ms;
  }

  private async load(): Promise<void> {
    const id = ++this.request;
    const now = Date.now();
    try {
      const history = await getMetricsHistory(now - this.rangeMs());
      if (id !== this.request) return;
      this.history = history;
      this.error = undefined;
      this.fetchedAt = now;
    } catch (err) {
      if (id !== this.request) return;
      this.error = err instanceof Error ? err.message : String(err);
    }
  }

  private select(range: RangeId): void {
    if (range === this.range) return;
    this.range = range;
    this.history = undefined;
    void this.load();
  }

  protected override render() {
    const samples = this.history?.samples ?? [];
    const windowMs = this.rangeMs();
    const cpu: ChartSeries[] = [{ label: 'CPU', color: 'var(--lr-cpu)', points: series(samples, (s) => s.cpuPercent) }];
    const mem: ChartSeries[] = [{ label: 'Memory', color: 'var(--lr-mem)', points: series(samples, memoryPercent) }];
    const net: ChartSeries[] = [
      { label: 'Download', color: 'var(--lr-rx)', points: series(samples, (s) => s.netRxBytesPerSecond) },
      { label: 'Upload', color: 'var(--lr-tx)', points: series(samples, (s) => s.netTxBytesPerSecond) },
    ];
    const empty = this.history ? 'No history for this range yet' : 'Loading…';
    return html`
      <section class="card" aria-label="History" data-testid="history">
        <div class="head">
          <h2>History</h2>
          <div class="seg" role="group" aria-label="History range">
            ${RANGES.map(
              (r) => html`<button type="button" aria-pressed=${r.id === this.range} data-testid="history-${r.id}"
                @click=${() => this.select(r.id)}>${r.label}</button>`,
            )}
          </div>
        </div>
        <div class="charts">
          <div>
            <h3>CPU</h3>
            <lr-chart label="CPU load history" .series=${cpu} .max=${100} .windowMs=${windowMs}
              .end=${this.fetchedAt} .formatValue=${pct} empty-text=${empty}></lr-chart>
          </div>
          <div>
            <h3>Memory</h3>
            <lr-chart label="Memory use history" .series=${mem} .max=${100} .windowMs=${windowMs}
              .end=${this.fetchedAt} .formatValue=${pct} empty-text=${empty}></lr-chart>
          </div>
          <div>
            <h3>Network</h3>
            <lr-chart label="Network traffic history" .series=${net} .minMax=${1000} .windowMs=${windowMs}
              .end=${this.fetchedAt} .formatValue=${formatRate} empty-text=${empty}></lr-chart>
          </div>
        </div>
        ${this.error
          ? html`<p class="note muted" role="status">History is unavailable: ${this.error}</p>`
          : samples.length > 0 && this.history && this.history.stepSeconds > 0
            ? html`<p class="note muted">Each point averages ${this.history.stepSeconds} s.</p>`
            : nothing}
      </section>
    `;
  }
}

customElements.define('lr-history-card', LrHistoryCard);

declare global {
  interface HTMLElementTagNameMap {
    'lr-history-card': LrHistoryCard;
  }
}
