import { access, readFile } from 'node:fs/promises';
import { release } from 'node:os';
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

/**
 * Whether a link exists in our network namespace, read from /proc/net/dev (which is per
 * namespace) instead of an `ip` process: a join storm starts one device per helper, and on a
 * loaded machine every process start costs more than the work it does. `ip` where /proc is not.
 */
export async function linkPresent(name: string): Promise<boolean> {
  const dev = checkInterfaceName(name);
  let text: string;
  try {
    text = await readFile('/proc/net/dev', 'utf8');
  } catch {
    return linkExists(dev);
  }
  return text.split('\n').slice(2).some((line) => line.slice(0, line.indexOf(':')).trim() === dev);
}

/**
 * False when this kernel certainly has no WireGuard: not loaded or built in (/sys/module), and
 * no module to load (modprobe reads /lib/modules/RELEASE: without that directory, or with module
 * lists that do not name it, nothing can be loaded). Then `ip link add type wireguard` can only
 * fail, and its process is skipped. True when it may work.
 */
export async function kernelWireguardPossible(kernelRelease: string = release()): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  const exists = (f: string): Promise<boolean> => access(f).then(() => true, () => false);
  if (await exists('/sys/module/wireguard')) return true;
  const dir = `/lib/modules/${kernelRelease}`;
  if (!(await exists(dir))) return false;
  const read = (f: string): Promise<string | null> => readFile(f, 'utf8').catch(() => null);
  const [dep, builtin] = await Promise.all([read(`${dir}/modules.dep`), read(`${dir}/modules.builtin`)]);
  // No module lists to judge by: let `ip` try.
  if (dep === null && builtin === null) return true;
  return /(^|\/)wireguard\.ko/m.test(`${dep ?? ''}\n${builtin ?? ''}`);
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
