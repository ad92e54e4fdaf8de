// Fixture for lab.test.ts: a process that creates a small lab, starts a process inside it, prints
// what it made, then waits to be killed (`wait`) or crashes (`throw`), so that the test can check
// what the exit/signal handlers and removeStaleLabs() leave behind.

import { createLab } from './lab.js';

const mode = process.argv[2];
if (mode !== 'wait' && mode !== 'throw') {
  process.stderr.write('usage: lab-child.js wait|throw\n');
  process.exit(2);
}

const lab = await createLab({ sites: [{ name: 'x', kind: 'port-restricted' }] });
const sleeper = lab.spawn(lab.site('x').host.ns, 'sleep', ['300']);
// A daemon outside the tracked process group, as wireguard-go would be.
const { stdout } = await lab.exec(lab.site('x').router?.ns ?? '', 'sh', ['-c', 'sleep 300 >/dev/null 2>&1 & echo $!']);
process.stdout.write(JSON.stringify({ id: lab.id, sleeper: sleeper.pid, daemon: Number(stdout.trim()) }) + '\n');

if (mode === 'throw') setTimeout(() => { throw new Error('lab-child: deliberate crash'); }, 50);
else setInterval(() => {}, 1000);
