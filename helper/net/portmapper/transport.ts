// The portmapper's I/O, behind one narrow interface so that PortMapper is tested with fakes:
// a UDP request/answer exchange with retransmissions, an SSDP search, and a bounded HTTP call.
// Each exchange uses its own short-lived socket bound to our address on the gateway's subnet
// (PCP checks that the packet's source is the client address it carries).

import { createSocket, type Socket } from 'node:dgram';
import { request } from 'node:http';
import { ownSenders } from '../own-senders.js';

export interface ExchangeOptions {
  /** When to send (ms after the start): the first entry is normally 0. */
  sendAtMs: readonly number[];
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface PortMapIo {
  /**
   * Sends `msg` from `localIp` to `ip:port` at each `sendAtMs` until `accept` returns a value for
   * a datagram from exactly `ip:port` (anything else is ignored); null when the time is up.
   * `sent` counts the datagrams that left.
   */
  exchange<T>(localIp: string, ip: string, port: number, msg: Buffer, accept: (b: Buffer) => T | undefined, o: ExchangeOptions): Promise<T | null>;
  /** Like exchange, to the SSDP multicast group; answers are accepted from `fromIp` only. */
  ssdp<T>(localIp: string, fromIp: string, msg: Buffer, accept: (b: Buffer) => T | undefined, o: ExchangeOptions): Promise<T | null>;
  /** One HTTP request; no redirects followed; rejects past maxBytes or timeoutMs. */
  http(method: 'GET' | 'POST', url: URL, o: { headers?: Record<string, string>; body?: string; maxBytes: number; timeoutMs: number }): Promise<HttpAnswer>;
  /** Datagrams sent so far (for the figures: packets per probe). */
  readonly sent: number;
}

export class NodePortMapIo implements PortMapIo {
  sent = 0;

  exchange<T>(localIp: string, ip: string, port: number, msg: Buffer, accept: (b: Buffer) => T | undefined, o: ExchangeOptions): Promise<T | null> {
    return this.run(localIp, ip, port, msg, (b, fromIp, fromPort) => (fromIp === ip && fromPort === port ? accept(b) : undefined), o, false);
  }

  ssdp<T>(localIp: string, fromIp: string, msg: Buffer, accept: (b: Buffer) => T | undefined, o: ExchangeOptions): Promise<T | null> {
    return this.run(localIp, '239.255.255.250', 1900, msg, (b, ip) => (ip === fromIp ? accept(b) : undefined), o, true);
  }

  private run<T>(localIp: string, ip: string, port: number, msg: Buffer, accept: (b: Buffer, ip: string, port: number) => T | undefined, o: ExchangeOptions, multicast: boolean): Promise<T | null> {
    return new Promise((resolve) => {
      const s: Socket = createSocket({ type: 'udp4' });
      const timers: NodeJS.Timeout[] = [];
      let done = false;
      let releaseOwn = (): void => undefined;
      const finish = (v: T | null): void => {
        if (done) return;
        done = true;
        releaseOwn();
        for (const t of timers) clearTimeout(t);
        try {
          s.close();
        } catch {
          // already closed
        }
        resolve(v);
      };
      s.on('error', () => finish(null));
      s.on('message', (b, rinfo) => {
        let v: T | undefined;
        try {
          v = accept(b, rinfo.address, rinfo.port);
        } catch {
          v = undefined;
        }
        if (v !== undefined) finish(v);
      });
      s.bind({ address: localIp, port: 0 }, () => {
        if (multicast) {
          try {
            // The LAN relay captures local multicast whatever the loopback flag: it must know
            // this search is ours (own-senders.ts).
            releaseOwn = ownSenders.add(localIp, s.address().port);
            s.setMulticastInterface(localIp);
            // The gateway is one hop away; SSDP must not wander further.
            s.setMulticastTTL(2);
            // Not back to this machine's own listeners.
            s.setMulticastLoopback(false);
          } catch {
            finish(null);
            return;
          }
        }
        for (const at of o.sendAtMs) {
          timers.push(
            setTimeout(() => {
              if (done) return;
              this.sent++;
              s.send(msg, port, ip, () => undefined);
            }, at),
          );
        }
        timers.push(setTimeout(() => finish(null), o.timeoutMs));
      });
    });
  }

  http(method: 'GET' | 'POST', url: URL, o: { headers?: Record<string, string>; body?: string; maxBytes: number; timeoutMs: number }): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const body = o.body === undefined ? undefined : Buffer.from(o.body, 'utf8');
      const req = request(
        {
          method,
          host: url.hostname,
          port: url.port === '' ? 80 : Number(url.port),
          path: url.pathname + url.search,
          headers: { ...o.headers, ...(body ? { 'Content-Length': String(body.length) } : {}), Connection: 'close' },
          timeout: o.timeoutMs,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (n > o.maxBytes) {
              req.destroy(new Error(`answer larger than ${o.maxBytes} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
