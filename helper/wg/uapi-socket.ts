import { createConnection } from 'node:net';
import { join } from 'node:path';
import { checkErrno, encodeSet, GET_REQUEST, isCompleteResponse, parseGet, type DeviceSet, type DeviceState } from './uapi.js';

// The UAPI unix socket that wireguard-go (and the other userspace implementations) serve at
// /var/run/wireguard/NAME.sock. Talking to it directly keeps the private key out of every argv
// and file, and a path switch costs one socket round trip instead of a `wg` process.

export const UAPI_DIR = '/var/run/wireguard';
export const uapiSocketPath = (name: string): string => join(UAPI_DIR, `${name}.sock`);

const MAX_ANSWER = 4 * 1024 * 1024;

/** Where a request's time went (ms): connecting, and from the write to the complete answer. */
export interface UapiTiming {
  connectMs?: number;
  answerMs?: number;
}

/** Sends one request on a fresh connection and returns the complete answer text; `timing` is filled in. */
export function uapiRequest(socketPath: string, request: string, timeoutMs = 5000, timing?: UapiTiming): Promise<string> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let sent = t0;
    const sock = createConnection(socketPath);
    let buf = '';
    let done = false;
    const finish = (err: Error | null, text?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(text!);
    };
    // After a stall of our own (a busy machine: a join storm starved helpers for seconds), the
    // event loop runs due timers before it reads sockets, so the timeout fired while the answer
    // sat unread and a join failed ("no answer … within 5000 ms", measured at load 20-30 while
    // our loop ran up to 3.4 s late and wireguard-go answered in ms). So the failure waits for
    // the loop's next I/O poll, and the wait restarts once the request is written.
    const expire = (): void => void setImmediate(() => finish(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)));
    let timer = setTimeout(expire, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      sent = performance.now();
      if (timing) timing.connectMs = Math.round(sent - t0);
      clearTimeout(timer);
      timer = setTimeout(expire, timeoutMs);
      sock.write(request);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_ANSWER) finish(new Error(`answer from ${socketPath} exceeds ${MAX_ANSWER} bytes`));
      else if (isCompleteResponse(buf)) {
        if (timing) timing.answerMs = Math.round(performance.now() - sent);
        finish(null, buf);
      }
    });
    sock.on('error', (err) => finish(new Error(`UAPI socket ${socketPath}: ${err.message}`)));
    sock.on('close', () => finish(new Error(`UAPI socket ${socketPath} closed before a complete answer`)));
  });
}

export async function uapiSet(socketPath: string, set: DeviceSet, timing?: UapiTiming): Promise<void> {
  checkErrno(await uapiRequest(socketPath, encodeSet(set), 5000, timing), 'set');
}

export async function uapiGet(socketPath: string): Promise<DeviceState> {
  return parseGet(await uapiRequest(socketPath, GET_REQUEST));
}

/** True if something accepts connections on the socket (a live device), false if stale/absent. */
export function uapiSocketAlive(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => done(true));
    sock.on('error', () => done(false));
  });
}
