import { css } from 'lit';

// The rows of the Games page's lists (running games, sessions, profiles).
export const gameList = css`
  ul {
    list-style: none;
    margin: 0;
    padding: 0;
  }
  li.game {
    display: flex;
    flex-wrap: wrap;
    gap: 4px 12px;
    align-items: baseline;
    padding: 10px 0;
    border-top: 1px solid var(--lr-border);
  }
  li.game:first-child {
    border-top: none;
  }
  .gname {
    font-weight: 700;
    overflow-wrap: anywhere;
  }
  .meta {
    font-size: 13px;
    color: var(--lr-muted);
    overflow-wrap: anywhere;
  }
`;
