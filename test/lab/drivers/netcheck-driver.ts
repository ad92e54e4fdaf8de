// Runs one netcheck from inside a lab namespace and prints the result as one JSON line:
//   node dist/test/lab/drivers/netcheck-driver.js IP:PORT [IP:PORT]

import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { runNetcheck } from '../../../helper/net/netcheck-run.js';

export const NETCHECK_DRIVER = fileURLToPath(import.meta.url);

if (resolve(process.argv[1] ?? '') === NETCHECK_DRIVER) {
  runNetcheck({ stunServers: process.argv.slice(2) }).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: unknown) => {
      process.stderr.write(`netcheck failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
