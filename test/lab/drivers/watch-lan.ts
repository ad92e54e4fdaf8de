// Reads a helper's Watch stream for LAN stats (topic LAN only), as any API client would, and
// prints one JSON line per event: {"at": ms since start it arrived, "sentAt": the helper's own
// timestamp (epoch ms), ...LanStats}. Runs inside a site namespace.
//   watch-lan.js GRPC_PORT SECONDS

import { credentials } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { WatchServiceClient, WatchTopic, type WatchResponse } from '../../../helper/gen/lanrage/v1/watch.js';

export const WATCH_LAN = fileURLToPath(import.meta.url);

if (process.argv[1] === WATCH_LAN) {
  const [port, seconds] = process.argv.slice(2).map(Number);
  const client = new WatchServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const t0 = Date.now();
  const stream = client.watch({ topics: [WatchTopic.WATCH_TOPIC_LAN], maxDurationSeconds: seconds ?? 600 });
  stream.on('data', (m: WatchResponse) => {
    if (m.lan) process.stdout.write(JSON.stringify({ at: Date.now() - t0, sentAt: m.time?.getTime() ?? null, ...m.lan }) + '\n');
  });
  stream.on('error', (err: Error) => {
    process.stderr.write(`watch failed: ${err.message}\n`);
    process.exit(1);
  });
  stream.on('end', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
