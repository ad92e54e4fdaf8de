import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The remote listener's TLS certificate: self-made (no CA will sign a LAN address), kept in the
// state directory so its fingerprint — what the user compares on the phone — survives restarts.
// Made again only when the listen address changes (the address is in its subjectAltName).

export const CERT_FILE = 'remote-tls.json';

export interface RemoteCert {
  address: string;
  cert: string;
  key: string;
}

export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

function load(file: string, address: string): RemoteCert | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<RemoteCert>;
    if (v.address !== address || typeof v.cert !== 'string' || typeof v.key !== 'string') return null;
    const x = new X509Certificate(v.cert);
    if (Date.parse(x.validTo) < Date.now() + 86_400_000) return null;
    return { address, cert: v.cert, key: v.key };
  } catch {
    return null;
  }
}

export async function loadOrMakeCert(stateDir: string, address: string): Promise<RemoteCert> {
  const file = join(stateDir, CERT_FILE);
  const existing = load(file, address);
  if (existing) return existing;
  // Loaded only here: its X.509 stack costs every helper start otherwise, and most never need it.
  const { generate } = await import('selfsigned');
  const notAfterDate = new Date(Date.now() + 825 * 86_400_000); // the longest validity browsers accept
  const made = await generate([{ name: 'commonName', value: `LANrage helper ${address}` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: address }] },
    ],
  });
  const cert: RemoteCert = { address, cert: made.cert, key: made.private };
  writeFileSync(file, JSON.stringify(cert), { mode: 0o600 });
  return cert;
}
