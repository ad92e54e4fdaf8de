// Styles every view shares (cards, labels, buttons); each shadow root adopts this one sheet.
import { css } from 'lit';

export const shared = css`
  :host {
    display: block;
    color: var(--lr-text);
    font-family: var(--lr-font);
  }
  *,
  *::before,
  *::after {
    box-sizing: border-box;
  }
  h2 {
    font-size: 13px;
    font-weight: 600;
    letter-spacing: 0.06em;
    text-transform: uppercase;
    color: var(--lr-muted);
    margin: 0 0 12px;
  }
  /* A view's column of cards. */
  .grid {
    display: grid;
    gap: 14px;
  }
  .card {
    background: var(--lr-surface);
    border: 1px solid var(--lr-border);
    border-radius: var(--lr-radius);
    padding: 16px 18px;
    min-width: 0;
  }
  .muted {
    color: var(--lr-muted);
  }
  code {
    font-family: var(--lr-mono);
    font-size: 0.92em;
    background: var(--lr-surface-2);
    border: 1px solid var(--lr-border);
    border-radius: 6px;
    padding: 1px 6px;
    white-space: nowrap;
  }
  /* Text fields of every form (settings, party, games, servers). */
  input[type='text'],
  input[type='url'],
  input[type='search'] {
    font: inherit;
    color: var(--lr-text);
    background: var(--lr-bg);
    border: 1px solid var(--lr-border);
    border-radius: 10px;
    padding: 10px 12px;
    min-height: 42px;
    width: 100%;
    min-width: 0;
  }
  input[aria-invalid='true'] {
    border-color: var(--lr-err);
  }
  button {
    font: inherit;
    font-weight: 600;
    color: #140a0c;
    background: linear-gradient(135deg, var(--lr-accent), var(--lr-accent-2));
    border: 0;
    border-radius: 10px;
    padding: 10px 18px;
    min-height: 40px;
    cursor: pointer;
  }
  button.secondary {
    color: var(--lr-text);
    background: var(--lr-surface-2);
    border: 1px solid var(--lr-border);
  }
  button:disabled {
    opacity: 0.45;
    cursor: not-allowed;
  }
  button:focus-visible,
  a:focus-visible,
  input:focus-visible {
    outline: 2px solid var(--lr-accent-2);
    outline-offset: 2px;
  }
`;
