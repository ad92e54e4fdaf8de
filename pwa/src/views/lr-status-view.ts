// Status: what the helper is, and its live metrics from the tab's Watch stream.
import { LitElement, css, html, nothing } from 'lit';
import { LiveController } from '../data/store-controller.js';
import { controlPlaneLabel } from '../data/status.js';
import { memoryPercent, type MetricsSample } from '../data/metrics.js';
import { formatBytes, formatClock, formatDuration, formatPercent, formatRate } from '../data/format.js';
import type { ChartPoint, ChartSeries } from '../components/lr-chart.js';
import { shared } from '../styles/shared.js';
import '../components/lr-chart.js';
import './lr-history-card.js';

const LIVE_WINDOW_MS = 120_000;

function points(samples: readonly MetricsSample[], pick: (s: MetricsSample) => number): ChartPoint[] {
  // Samples without a time (there should be none) are spaced a second apart from the end.
  const n = samples.length;
  const lastT = samples[n - 1]?.time?.getTime() ?? Date.now();
  return samples.map((s, i) => ({ t: s.time?.getTime() ?? lastT - (n - 1 - i) * 1000, v: pick(s) }));
}

const pct = (v: number): string => `${Math.round(v)} %`;

export class LrStatusView extends LitElement {
  private readonly live = new LiveController(this);

  static override styles = [
    shared,
    css`
      .metrics {
        display: grid;
        gap: 14px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 240px), 1fr));
      }
      .device-head {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 4px 14px;
        margin-bottom: 14px;
      }
      .device-name {
        font-size: clamp(22px, 4vw, 30px);
        font-weight: 700;
        margin: 0;
        overflow-wrap: anywhere;
      }
      dl {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 150px), 1fr));
        gap: 12px 20px;
        margin: 0;
      }
      dt {
        font-size: 12px;
        color: var(--lr-muted);
        margin-bottom: 2px;
      }
      dd {
        margin: 0;
        font-variant-numeric: tabular-nums;
        overflow-wrap: anywhere;
      }
      .metric-head {
        display: flex;
        justify-content: space-between;
        align-items: baseline;
        gap: 8px;
      }
      .metric-head h2 {
        margin: 0;
      }
      .value {
        font-size: 28px;
        font-weight: 700;
        font-variant-numeric: tabular-nums;
        margin: 6px 0 2px;
        white-space: nowrap;
      }
      .sub {
        font-size: 13px;
        color: var(--lr-muted);
        margin-bottom: 12px;
        font-variant-numeric: tabular-nums;
        min-height: 1.3em;
      }
      .rates {
        display: flex;
        gap: 18px;
        flex-wrap: wrap;
      }
      .rates .value {
        font-size: 22px;
      }
      .dot {
        display: inline-block;
        width: 8px;
        height: 8px;
        border-radius: 50%;
        margin-right: 6px;
        vertical-align: middle;
      }
      .dot.rx {
        background: var(--lr-rx);
      }
      .dot.tx {
        background: var(--lr-tx);
      }
      a.pill {
        color: inherit;
        text-decoration: none;
      }
      a.pill:hover {
        border-color: var(--lr-accent);
      }
      .pill {
        display: inline-block;
        font-size: 12px;
        padding: 2px 10px;
        border-radius: 999px;
        border: 1px solid var(--lr-border);
        background: var(--lr-surface-2);
      }
      .section-head {
        grid-column: 1 / -1;
        display: flex;
        justify-content: space-between;
        align-items: baseline;
        flex-wrap: wrap;
        gap: 6px;
        margin: 8px 2px -4px;
      }
      .section-head h2 {
        margin: 0;
      }
      .section-head span {
        font-size: 12px;
      }
    `,
  ];

  private renderDevice() {
    const { status, statusAt } = this.live.state;
    if (!status) {
      return html`<section class="card device"><p class="muted">Loading the helper's status…</p></section>`;
    }
    const uptime = status.uptimeSeconds + Math.max(0, (performance.now() - statusAt) / 1000);
    return html`
      <section class="card device" aria-labelledby="device-name">
        <div class="device-head">
          <h1 class="device-name" id="device-name" data-testid="device-name">${status.deviceName}</h1>
          <a class="pill" href="#/party" data-testid="party-state">${status.inParty ? 'In a party' : 'Not in a party'}</a>
        </div>
        <dl>
          <div><dt>Host name</dt><dd data-testid="hostname">${status.hostname || '—'}</dd></div>
          <div><dt>Helper version</dt><dd data-testid="version">${status.version || '—'}</dd></div>
          <div><dt>Uptime</dt><dd data-testid="uptime">${formatDuration(uptime)}</dd></div>
          <div><dt>System</dt><dd data-testid="os-arch">${status.os} / ${status.arch}</dd></div>
          <div>
            <dt>Local API ports</dt>
            <dd data-testid="ports">gRPC ${status.grpcPort} · HTTP ${status.httpPort}</dd>
          </div>
          <div>
            <dt>Control plane</dt>
            <dd data-testid="control-plane">${controlPlaneLabel(status.controlPlane)}</dd>
          </div>
        </dl>
      </section>
    `;
  }

  private renderMetrics() {
    const { latest, samples } = this.live.state;
    const cpu: ChartSeries[] = [{ label: 'CPU', color: 'var(--lr-cpu)', points: points(samples, (s) => s.cpuPercent) }];
    const mem: ChartSeries[] = [{ label: 'Memory', color: 'var(--lr-mem)', points: points(samples, memoryPercent) }];
    const net: ChartSeries[] = [
      { label: 'Download', color: 'var(--lr-rx)', points: points(samples, (s) => s.netRxBytesPerSecond) },
      { label: 'Upload', color: 'var(--lr-tx)', points: points(samples, (s) => s.netTxBytesPerSecond) },
    ];
    const helper: ChartSeries[] = [
      { label: 'Helper CPU', color: 'var(--lr-accent-2)', points: points(samples, (s) => s.helperCpuPercent) },
    ];
    return html`
      <div class="section-head">
        <h2>Live · last 2 minutes</h2>
        <span class="muted" data-testid="sample-count" data-count=${samples.length}>
          ${samples.length} samples · updated ${formatClock(latest?.time)}
        </span>
      </div>
      <section class="card" aria-label="CPU">
        <div class="metric-head"><h2>CPU</h2></div>
        <div class="value" data-testid="cpu-value">${latest ? formatPercent(latest.cpuPercent) : '—'}</div>
        <div class="sub">Whole machine</div>
        <lr-chart data-testid="cpu-chart" label="CPU load, last two minutes" .series=${cpu} .max=${100}
          .windowMs=${LIVE_WINDOW_MS} .formatValue=${pct}></lr-chart>
      </section>
      <section class="card" aria-label="Memory">
        <div class="metric-head"><h2>Memory</h2></div>
        <div class="value" data-testid="mem-value">${latest ? formatBytes(latest.memoryUsedBytes) : '—'}</div>
        <div class="sub">
          ${latest ? `of ${formatBytes(latest.memoryTotalBytes)} · ${formatPercent(memoryPercent(latest))} used` : nothing}
        </div>
        <lr-chart data-testid="mem-chart" label="Memory use, last two minutes" .series=${mem} .max=${100}
          .windowMs=${LIVE_WINDOW_MS} .formatValue=${pct}></lr-chart>
      </section>
      <section class="card" aria-label="Network">
        <div class="metric-head"><h2>Network</h2></div>
        <div class="rates">
          <div>
            <div class="value" data-testid="net-rx-value">
              <span class="dot rx"></span>${latest ? formatRate(latest.netRxBytesPerSecond) : '—'}
            </div>
            <div class="sub">Download</div>
          </div>
          <div>
            <div class="value" data-testid="net-tx-value">
              <span class="dot tx"></span>${latest ? formatRate(latest.netTxBytesPerSecond) : '—'}
            </div>
            <div class="sub">Upload</div>
          </div>
        </div>
        <lr-chart data-testid="net-chart" label="Network traffic, last two minutes" .series=${net}
          .minMax=${1000} .windowMs=${LIVE_WINDOW_MS} .formatValue=${formatRate}></lr-chart>
      </section>
      <section class="card" aria-label="Helper process">
        <div class="metric-head"><h2>Helper process</h2></div>
        <div class="value" data-testid="helper-cpu-value">${latest ? formatPercent(latest.helperCpuPercent) : '—'}</div>
        <div class="sub">${latest ? `CPU of one core · ${formatBytes(latest.helperRssBytes)} resident` : nothing}</div>
        <lr-chart data-testid="helper-chart" label="Helper CPU, last two minutes" .series=${helper} .minMax=${5}
          .windowMs=${LIVE_WINDOW_MS} .formatValue=${pct}></lr-chart>
      </section>
    `;
  }

  protected override render() {
    return html`<div class="grid">
      ${this.renderDevice()}
      <div class="metrics">${this.renderMetrics()}</div>
      <lr-history-card></lr-history-card>
    </div>`;
  }
}

customElements.define('lr-status-view', LrStatusView);

declare global {
  interface HTMLElementTagNameMap {
    'lr-status-view': LrStatusView;
  }
}
