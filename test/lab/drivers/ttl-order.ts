// Sends a fixed sequence through a PublicSocket so a test can count, with nft in this namespace,
// which datagrams left with the priming TTL:
//   node ttl-order.js <ip:port>   → "before" (TTL 64), prime-1, prime-2 (TTL 2), after-1, after-2 (TTL 64)

import { PublicSocket } from '../../../helper/net/socket.js';

const [ip, port] = (process.argv[2] ?? '').split(':');
const s = new PublicSocket({ bindAddress: '0.0.0.0', port: 0, primingTtl: 2, onMessage: () => {}, onError: (e) => console.error(e.message) });
await s.bind();
const p = Number(port);
const to = String(ip);
s.send(Buffer.from('before'), p, to);
s.prime(Buffer.from('prime-1'), p, to);
s.prime(Buffer.from('prime-2'), p, to);
s.send(Buffer.from('after-1'), p, to);
await s.whenPrimed();
s.send(Buffer.from('after-2'), p, to);
await new Promise((r) => setTimeout(r, 50));
await s.close();
