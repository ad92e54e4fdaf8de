// Runs inside a lab namespace: accepts on a unix socket (a file path, which every network
// namespace can reach) and connects each client to a TCP address in this namespace. The demo
// uses it to show helpers' PWAs, which listen on their own namespace's loopback, to the host.
import { connect, createServer } from 'node:net';
import { rmSync } from 'node:fs';

const [unixPath, target] = process.argv.slice(2);
const m = /^(127\.0\.0\.1):(\d+)$/.exec(target ?? '');
if (!unixPath || !m) {
  process.stderr.write('usage: ns-forward UNIX_PATH 127.0.0.1:PORT\n');
  process.exit(2);
}
rmSync(unixPath, { force: true });
createServer((client) => {
  const up = connect(Number(m[2]), m[1]);
  client.pipe(up).pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
}).listen(unixPath, () => process.stdout.write('ready\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
