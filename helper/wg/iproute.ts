import { CommandError, run } from './exec.js';
import { checkCidr, checkIntRange, checkInterfaceName, MTU_MAX, MTU_MIN } from './validate.js';

// The few `ip` commands the engine needs, each with validated arguments in an array.

export async function linkExists(name: string): Promise<boolean> {
  try {
    await run('ip', ['link', 'show', 'dev', checkInterfaceName(name)]);
    return true;
  } catch (err) {
    if (err instanceof CommandError && /does not exist|Cannot find device/i.test(err.stderr)) return false;
    throw err;
  }
}

export type KernelLinkResult = { ok: true } | { ok: false; reason: string };

/** Tries the kernel implementation. "Already exists" is an error; anything else means "no kernel WireGuard". */
export async function linkAddKernelWireguard(name: string): Promise<KernelLinkResult> {
  try {
    await run('ip', ['link', 'add', 'dev', checkInterfaceName(name), 'type', 'wireguard']);
    return { ok: true };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (/File exists/i.test(err.stderr)) throw new Error(`interface ${name} already exists`);
    return { ok: false, reason: err.stderr.trim() };
  }
}

/** Deletes the link; false if it was not there. */
export async function linkDelete(name: string): Promise<boolean> {
  try {
    await run('ip', ['link', 'del', 'dev', checkInterfaceName(name)]);
    return true;
  } catch (err) {
    if (err instanceof CommandError && /does not exist|Cannot find device/i.test(err.stderr)) return false;
    throw err;
  }
}

/** Adds the address; with a prefix shorter than the host's, the kernel adds the subnet route on link up. */
export async function addrAdd(name: string, cidr: string): Promise<void> {
  await run('ip', ['addr', 'add', checkCidr(cidr, 'interface address'), 'dev', checkInterfaceName(name)]);
}

export async function linkSetMtu(name: string, mtu: number): Promise<void> {
  await run('ip', ['link', 'set', 'dev', checkInterfaceName(name), 'mtu', String(checkIntRange('mtu', mtu, MTU_MIN, MTU_MAX))]);
}

export async function linkSetUp(name: string): Promise<void> {
  await run('ip', ['link', 'set', 'dev', checkInterfaceName(name), 'up']);
}

/** The `ip -batch` lines that give a new link its address and MTU and bring it up. */
export function linkConfigureBatch(name: string, cidr: string, mtu: number): string {
  const dev = checkInterfaceName(name);
  return [
    `addr add ${checkCidr(cidr, 'interface address')} dev ${dev}`,
    `link set dev ${dev} mtu ${checkIntRange('mtu', mtu, MTU_MIN, MTU_MAX)}`,
    `link set dev ${dev} up`,
  ].join('\n') + '\n';
}

/**
 * Address, MTU and link up in one `ip` process: a join storm starts one device per helper, and on
 * a loaded machine each process start costs more than the work it does. The lines are built from
 * validated values only (interface name charset, CIDR, integer MTU).
 */
export async function linkConfigure(name: string, cidr: string, mtu: number): Promise<void> {
  await run('ip', ['-batch', '-'], { input: linkConfigureBatch(name, cidr, mtu) });
}

/** The link's kind ("wireguard", "tun", "veth", "" for a plain device), or null if there is no such link. */
export async function linkKind(name: string): Promise<string | null> {
  let stdout: string;
  try {
    ({ stdout } = await run('ip', ['-j', '-d', 'link', 'show', 'dev', checkInterfaceName(name)]));
  } catch (err) {
    if (err instanceof CommandError && /does not exist|Cannot find device/i.test(err.stderr)) return null;
    throw err;
  }
  const links = JSON.parse(stdout) as Array<{ linkinfo?: { info_kind?: unknown } }>;
  const kind = links[0]?.linkinfo?.info_kind;
  return typeof kind === 'string' ? kind : '';
}
