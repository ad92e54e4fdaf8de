// A small SVG area chart for live series. Hand-written: two dozen lines of path building do not
// justify a chart library in a bundle that every phone downloads.
import { LitElement, css, html, svg, nothing, type PropertyValues } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';

export interface ChartPoint {
  /** Epoch ms. */
  readonly t: number;
  readonly v: number;
}

export interface ChartSeries {
  readonly label: string;
  /** Any CSS colour, custom properties included. */
  readonly color: string;
  readonly points: readonly ChartPoint[];
}

const W = 1000;
const H = 100;

/** 1, 2 or 5 times a power of ten, at least `v`: scale tops that read well. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

let gradientIds = 0;

export class LrChart extends LitElement {
  static override properties = {
    series: { attribute: false },
    windowMs: { type: Number, attribute: 'window-ms' },
    max: { type: Number },
    minMax: { type: Number, attribute: 'min-max' },
    formatValue: { attribute: false },
    label: { type: String },
    end: { type: Number },
    emptyText: { type: String, attribute: 'empty-text' },
  };

  declare series: readonly ChartSeries[];
  declare windowMs: number;
  /** Fixed top of the scale (e.g. 100 for percentages); otherwise it follows the data. */
  declare max: number | undefined;
  /** Smallest automatic top, so an idle link does not magnify noise into a mountain range. */
  declare minMax: number;
  declare formatValue: (v: number) => string;
  declare label: string;
  /** Right edge in epoch ms; by default the newest point, so live charts scroll with the data. */
  declare end: number | undefined;
  declare emptyText: string;

  private readonly gid = `lr-chart-${++gradientIds}`;

  constructor() {
    super();
    this.series = [];
    this.windowMs = 120_000;
    this.max = undefined;
    this.minMax = 1;
    this.formatValue = (v) => String(Math.round(v));
    this.label = '';
    this.end = undefined;
    this.emptyText = 'Waiting for samples…';
  }

  static override styles = css`
    :host {
      display: block;
      position: relative;
      height: 96px;
    }
    svg {
      display: block;
      width: 100%;
      height: 100%;
      overflow: visible;
    }
    .grid {
      stroke: var(--lr-border);
      stroke-width: 1;
      stroke-dasharray: 4 6;
    }
    .line {
      fill: none;
      stroke-width: 2;
      stroke-linejoin: round;
      stroke-linecap: round;
    }
    .mark {
      position: absolute;
      width: 7px;
      height: 7px;
      margin: -3.5px 0 0 -3.5px;
      border-radius: 50%;
      pointer-events: none;
    }
    .top {
      position: absolute;
      top: -2px;
      left: 0;
      font-size: 11px;
      color: var(--lr-muted);
      background: var(--lr-surface);
      padding: 0 4px 0 0;
      font-variant-numeric: tabular-nums;
    }
    .empty {
      position: absolute;
      inset: 0;
      display: grid;
      place-items: center;
      font-size: 13px;
      color: var(--lr-muted);
    }
  `;

  private scaleTop(): number {
    if (this.max !== undefined) return this.max;
    let hi = 0;
    for (const s of this.series) for (const p of s.points) hi = Math.max(hi, p.v);
    return niceCeil(Math.max(hi, this.minMax));
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('series')) {
      const n = Math.max(0, ...this.series.map((s) => s.points.length));
      this.dataset['samples'] = String(n);
    }
  }

  private project(points: readonly ChartPoint[], end: number, top: number): [number, number][] {
    const start = end - this.windowMs;
    return points
      .filter((p) => p.t >= start && p.t <= end)
      .map((p) => [((p.t - start) / this.windowMs) * W, H - (Math.min(Math.max(p.v, 0), top) / top) * H]);
  }

  private paths(xy: readonly [number, number][]): { line: string; area: string } {
    if (xy.length === 0) return { line: '', area: '' };
    const line = `M${xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L')}`;
    const firstX = xy[0]![0].toFixed(1);
    const lastX = xy[xy.length - 1]![0].toFixed(1);
    return { line, area: `${line}L${lastX},${H}L${firstX},${H}Z` };
  }

  protected override render() {
    const hasData = this.series.some((s) => s.points.length > 0);
    const end = this.end ?? Math.max(0, ...this.series.flatMap((s) => s.points.map((p) => p.t)));
    const top = this.scaleTop();
    const projected = this.series.map((s) => ({ s, xy: this.project(s.points, end, top) }));
    return html`
      <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label=${this.label}>
        <defs>
          ${this.series.map(
            (s, i) => svg`<linearGradient id="${this.gid}-${i}" x1="0" y1="0" x2="0" y2="1">
              <stop offset="0" stop-color=${s.color} stop-opacity="0.35"></stop>
              <stop offset="1" stop-color=${s.color} stop-opacity="0.02"></stop>
            </linearGradient>`,
          )}
        </defs>
        <line class="grid" x1="0" x2=${W} y1="0" y2="0" vector-effect="non-scaling-stroke"></line>
        <line class="grid" x1="0" x2=${W} y1=${H / 2} y2=${H / 2} vector-effect="non-scaling-stroke"></line>
        <line class="grid" x1="0" x2=${W} y1=${H} y2=${H} vector-effect="non-scaling-stroke"></line>
        ${projected.map(({ s, xy }, i) => {
          const { line, area } = this.paths(xy);
          return svg`<path d=${area || 'M0,0'} fill="url(#${this.gid}-${i})" opacity=${area ? 1 : 0}></path>
            <path class="line" d=${line || 'M0,0'} stroke=${s.color} opacity=${line ? 1 : 0}
              vector-effect="non-scaling-stroke"></path>`;
        })}
      </svg>
      ${projected.map(({ s, xy }) => {
        // The newest point gets a dot: it marks "now", and a lone first sample is visible at all.
        const last = xy[xy.length - 1];
        return last
          ? html`<span class="mark" style=${styleMap({ left: `${last[0] / 10}%`, top: `${last[1]}%`, background: s.color })}></span>`
          : nothing;
      })}
      ${hasData ? html`<span class="top">${this.formatValue(top)}</span>` : nothing}
      ${hasData ? nothing : html`<div class="empty">${this.emptyText}</div>`}
    `;
  }
}

customElements.define('lr-chart', LrChart);

declare global {
  interface HTMLElementTagNameMap {
    'lr-chart': LrChart;
  }
}
