// Which webhook URLs the helper accepts. The URL is configuration, and the helper contacts only
// what its configuration names, so the check is strict: Discord's own hosts, https, the
// documented path /api/webhooks/{id}/{token} (optionally /api/v10/...), nothing else.
// A loopback http URL is accepted only when the helper was started with --discord-test-loopback:
// a command-line flag of the root process, which no API call, setting or environment can set, so
// a user (or a page talking to the API) cannot point the helper at a local service by accident.

export const DISCORD_WEBHOOK_HOSTS = ['discord.com', 'discordapp.com', 'canary.discord.com', 'ptb.discord.com', 'canary.discordapp.com', 'ptb.discordapp.com'];
const MAX_URL = 512;
const ID = /^\d{17,20}$/;
const TOKEN = /^[A-Za-z0-9_-]{20,100}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export interface WebhookUrl {
  /** Canonical URL to POST to (no query, no fragment). */
  url: string;
  /** The webhook's id (not secret): for logs and status. */
  id: string;
}

export function parseWebhookUrl(raw: string, opts: { allowLoopback?: boolean } = {}): WebhookUrl | string {
  const text = raw.trim();
  if (text.length === 0) return 'the webhook URL is empty';
  if (text.length > MAX_URL) return `the webhook URL is longer than ${MAX_URL} characters`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'that is not a URL: copy it from Discord (channel settings → Integrations → Webhooks → Copy Webhook URL)';
  }
  const loopback = opts.allowLoopback === true && u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname);
  if (!loopback) {
    if (u.protocol !== 'https:') return 'a Discord webhook URL starts with https://';
    if (!DISCORD_WEBHOOK_HOSTS.includes(u.hostname) || u.port !== '') return `only Discord's webhook hosts are accepted (${DISCORD_WEBHOOK_HOSTS.join(', ')})`;
  }
  if (u.username !== '' || u.password !== '') return 'the webhook URL must not carry a user name or password';
  if (u.search !== '' || u.hash !== '') return 'the webhook URL must not carry a query or fragment';
  const parts = u.pathname.split('/');
  // ['', 'api', ('v10',)? 'webhooks', id, token]
  const m = /^\/api(?:\/v\d{1,2})?\/webhooks\/([^/]+)\/([^/]+)\/?$/.exec(u.pathname);
  if (!m || parts.length < 5) return 'the path must be /api/webhooks/{id}/{token}';
  const [, id, token] = m as unknown as [string, string, string];
  if (!ID.test(id)) return 'the webhook id must be 17-20 digits';
  if (!TOKEN.test(token)) return 'the webhook token must be 20-100 characters of A-Z a-z 0-9 _ -';
  return { url: `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}`, id };
}

/** For logs: the URL without its token. */
export const redactWebhook = (w: WebhookUrl): string => `webhook ${w.id}`;
