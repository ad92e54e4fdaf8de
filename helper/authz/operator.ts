import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The operator: the one unprivileged local user who may control the helper besides root (the user
// who installed or started LANrage). Decided at start, in this order:
//   1. --operator USER|UID (the installer passes the installing user),
//   2. SUDO_UID, when the helper was started with sudo,
//   3. the uid remembered in STATE_DIR/operator from an earlier start by 1 or 2,
//   4. the owner of the state directory, when that is not root.
// It is not an API setting on purpose: only whoever can restart the helper may change it.

export const OPERATOR_FILE = 'operator';

export interface OperatorSource {
  flag: string | undefined;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  passwd?: string; // /etc/passwd text, for names
}

export type OperatorChoice = { uid: number | null; from: 'flag' | 'sudo' | 'state' | 'state-dir-owner' | 'none' };

const UID_RE = /^\d{1,10}$/;

export function uidOfName(name: string, passwd: string): number | null {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && UID_RE.test(f[2])) return Number(f[2]);
  }
  return null;
}

export function parseOperatorFlag(v: string, passwd: string): number {
  if (UID_RE.test(v)) return Number(v);
  const uid = uidOfName(v, passwd);
  if (uid === null) throw new Error(`--operator ${v.slice(0, 64)}: no such user (give a user name from /etc/passwd or a numeric uid)`);
  return uid;
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}

export function resolveOperator(src: OperatorSource): OperatorChoice {
  const file = join(src.stateDir, OPERATOR_FILE);
  const remember = (uid: number): void => writeFileSync(file, `${uid}\n`, { mode: 0o600 });
  if (src.flag !== undefined && src.flag !== '') {
    const uid = parseOperatorFlag(src.flag, src.passwd ?? readPasswd());
    remember(uid);
    return { uid, from: 'flag' };
  }
  const sudo = src.env.SUDO_UID;
  if (sudo !== undefined && UID_RE.test(sudo) && sudo !== '0') {
    remember(Number(sudo));
    return { uid: Number(sudo), from: 'sudo' };
  }
  try {
    const saved = readFileSync(file, 'utf8').trim();
    if (UID_RE.test(saved)) return { uid: Number(saved), from: 'state' };
  } catch {
    // none remembered
  }
  try {
    const owner = statSync(src.stateDir).uid;
    if (owner !== 0) return { uid: owner, from: 'state-dir-owner' };
  } catch {
    // no state dir yet
  }
  return { uid: null, from: 'none' };
}
