// A QR code of `value`, drawn as an SVG image. The `qrcode` package does the encoding (error
// correction and masking are not worth writing by hand); a data: URL keeps it inside the page's
// CSP (img-src 'self' data:) without inline markup.
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { toString as qrToString } from 'qrcode';

/** Shared with the browser test, which renders the same text and compares. */
export const QR_OPTIONS = { type: 'svg', errorCorrectionLevel: 'M', margin: 2 } as const;

export class LrQr extends LitElement {
  static override properties = {
    value: { type: String },
    label: { type: String },
    src: { state: true },
    failed: { state: true },
  };
  declare value: string;
  declare label: string;
  declare src: string | undefined;
  declare failed: boolean;
  private generation = 0;

  constructor() {
    super();
    this.value = '';
    this.label = 'QR code';
    this.src = undefined;
    this.failed = false;
  }

  static override styles = css`
    :host {
      display: inline-block;
      line-height: 0;
    }
    img {
      width: 100%;
      height: auto;
      aspect-ratio: 1;
      /* Scanners need the quiet zone light whatever the theme. */
      background: #fff;
      border-radius: 10px;
      image-rendering: pixelated;
    }
    .failed {
      line-height: 1.4;
      font-size: 13px;
      color: var(--lr-muted);
    }
  `;

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (!changed.has('value')) return;
    const value = this.value;
    const generation = ++this.generation;
    this.failed = false;
    if (value === '') {
      this.src = undefined;
      return;
    }
    qrToString(value, QR_OPTIONS).then(
      (svg) => {
        if (generation === this.generation) this.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      },
      () => {
        if (generation === this.generation) this.failed = true;
      },
    );
  }

  protected override render() {
    if (this.failed) return html`<span class="failed">This link is too long for a QR code.</span>`;
    if (!this.src) return nothing;
    return html`<img src=${this.src} alt=${this.label} data-testid="qr-img" />`;
  }
}

customElements.define('lr-qr', LrQr);

declare global {
  interface HTMLElementTagNameMap {
    'lr-qr': LrQr;
  }
}
