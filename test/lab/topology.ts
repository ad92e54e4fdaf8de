// The lab's topology as data: names, addresses, and the exact ip/sysctl/nft input for every
// namespace. Pure, so that naming limits and address carving are unit-tested without root;
// lab.ts only executes what this plans.

/**
 * NATs with endpoint-independent mapping whose filtering is looser than Linux masquerade's:
 * 'full-cone' lets anyone reach a live mapping (endpoint-independent filtering);
 * 'address-restricted' lets in any port of an IP the mapping has sent to (address-dependent).
 */
export type ConeKind = 'full-cone' | 'address-restricted';
export const CONE_KINDS: readonly ConeKind[] = ['full-cone', 'address-restricted'];
export const isConeKind = (k: NatKind): k is ConeKind => (CONE_KINDS as readonly string[]).includes(k);

/**
 * Routers that map ports on request: 'upnp' is a port-restricted NAT (Linux masquerade) whose
 * router runs miniupnpd (UPnP IGD, NAT-PMP, PCP); 'upnp-symmetric' the same on a symmetric NAT
 * (masquerade fully-random). The plan only prepares miniupnpd's nft table; the lab starts
 * miniupnpd itself (test/lab/miniupnpd.ts) once the control server's STUN is up.
 */
export type PortMapKind = 'upnp' | 'upnp-symmetric';
export const PORTMAP_KINDS: readonly PortMapKind[] = ['upnp', 'upnp-symmetric'];
export const isPortMapKind = (k: NatKind): k is PortMapKind => (PORTMAP_KINDS as readonly string[]).includes(k);

/**
 * 'udp-blocked': a port-restricted NAT whose router forwards no UDP at all (TCP works).
 * 'symmetric-sequential': endpoint-dependent mapping whose UDP ports go up by SEQ_PORT_STEP per
 * new flow (sequentialRuleset).
 */
export type NatKind = 'public' | 'port-restricted' | 'symmetric' | 'udp-blocked' | ConeKind | 'cgnat' | 'symmetric-sequential' | PortMapKind;
export const NAT_KINDS: readonly NatKind[] = ['public', 'port-restricted', 'symmetric', 'udp-blocked', ...CONE_KINDS, 'cgnat', 'symmetric-sequential', ...PORTMAP_KINDS];

/** The sequential NAT's first UDP port, its step per new flow, and how many ports it cycles through. */
export const SEQ_PORT_BASE = 40000;
export const SEQ_PORT_STEP = 2;
export const SEQ_PORT_COUNT = 1024;

/**
 * The control namespace's second address, for the alternate STUN address (RFC 5780 tests need two
 * IPs). TEST-NET-1, routed by the internet router to the control namespace; TEST-NET-3 is full.
 */
export const CONTROL_ALT_IP = '192.0.2.2';

/**
 * 'cgnat': a port-restricted home router whose WAN side is a carrier's symmetric NAT (a third
 * namespace). The carrier link is a /30 from TEST-NET-1's upper half, one per site.
 */
const CGN_NET = '192.0.2';
const CGN_BASE = 128;

export interface CarrierPlan {
  ns: string;
  /** veth: carrier side, home-router side. */
  carrierIf: string;
  homeIf: string;
  carrierIp: string;
  homeIp: string;
}

/** Everything the lab creates carries this prefix; cleanup only ever looks at names that have it. */
export const NS_PREFIX = 'lr';
export const ID_RE = /^[a-z0-9]{1,8}$/;
export const SLUG_RE = /^[a-z0-9]{1,8}$/;
/** Linux IFNAMSIZ is 16 including the NUL. */
export const IFNAME_MAX = 15;

// TEST-NET-3 is the "internet" (64 point-to-point /30s), TEST-NET-2 the site LANs (16 /28s).
const WAN_NET = '203.0.113';
const LAN_NET = '198.51.100';
export const MAX_LINKS = 64;
export const MAX_SITES = 16;

/** nft table names inside lab namespaces (one table each; nothing else lives there). */
export const INET_TABLE = 'lanrage_lab';
export const ROUTER_TABLE = 'lanrage_lab_nat';

export interface LinkPlan {
  k: number;
  inetIf: string; // internet-router side
  peerIf: string; // the other namespace's side
  inetIp: string;
  peerIp: string;
  peerNs: string;
}

export interface SitePlan {
  name: string; // as given
  slug: string; // sanitized, used in names
  kind: NatKind;
  index: number;
  hostNs: string;
  routerNs: string | null;
  link: LinkPlan; // router WAN link, or the public host's own link
  lanIf: { router: string; host: string } | null;
  routerLanIp: string | null;
  lanIp: string;
  publicIp: string;
  /** 'cgnat' only: the carrier NAT between the home router and the internet. */
  carrier: CarrierPlan | null;
}

export type NsRole = 'inet' | 'control' | 'router' | 'host';

export interface NsPlan {
  name: string;
  role: NsRole;
  ifaces: string[];
  /** `key=value` arguments for one `sysctl -w` call. */
  sysctls: string[];
  /** Lines for `ip -n NAME -batch -`. */
  ipBatch: string[];
  /** An nft ruleset for `nft -f -`, or null. */
  nft: string | null;
}

export interface LabPlan {
  id: string;
  inetNs: string;
  ctlNs: string;
  control: LinkPlan;
  /** The control namespace's second address (alternate STUN address). */
  controlAltIp: string;
  sites: SitePlan[];
  namespaces: NsPlan[];
  /** Lines for a root-namespace `ip -batch -`: creates every namespace and veth pair. */
  rootBatch: string[];
}

/** Lowercase, keep [a-z0-9], at most 8 characters. */
export function sanitizeSiteName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 8);
}

export function nsNamesOf(id: string): { inet: string; ctl: string; router(slug: string): string; host(slug: string): string; carrier(slug: string): string } {
  const p = `${NS_PREFIX}${id}`;
  return { inet: `${p}-inet`, ctl: `${p}-ctl`, router: (s) => `${p}-${s}-r`, host: (s) => `${p}-${s}-h`, carrier: (s) => `${p}-${s}-c` };
}

function carrierPlan(id: string, index: number, ns: string): CarrierPlan {
  return {
    ns,
    carrierIf: `${NS_PREFIX}${id}c${index}a`,
    homeIf: `${NS_PREFIX}${id}c${index}b`,
    carrierIp: `${CGN_NET}.${CGN_BASE + 4 * index + 1}`,
    homeIp: `${CGN_NET}.${CGN_BASE + 4 * index + 2}`,
  };
}

function link(id: string, k: number, peerNs: string): LinkPlan {
  return {
    k,
    inetIf: `${NS_PREFIX}${id}v${k}a`,
    peerIf: `${NS_PREFIX}${id}v${k}b`,
    inetIp: `${WAN_NET}.${4 * k + 1}`,
    peerIp: `${WAN_NET}.${4 * k + 2}`,
    peerNs,
  };
}

function sysctlsFor(ifaces: string[], forward: boolean): string[] {
  const out = [
    // No IPv6 at all, so that nothing can leave the lab by a path the test does not model.
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
    // Effective rp_filter is max(all, iface): both must be 0 for asymmetric lab paths.
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    `net.ipv4.ip_forward=${forward ? 1 : 0}`,
  ];
  for (const i of ['lo', ...ifaces]) out.push(`net.ipv6.conf.${i}.disable_ipv6=1`, `net.ipv4.conf.${i}.rp_filter=0`);
  return out;
}

function inetRuleset(links: LinkPlan[]): string {
  // Named counters of what the internet router FORWARDS per link: ARP and packets that die at
  // the router (TTL expiry) are not counted, so "0 packets to control" means exactly that.
  const counters = links.map((l) => `  counter to_${l.k} {}\n  counter from_${l.k} {}\n`).join('');
  const rules = links
    .map((l) => `    iifname "${l.inetIf}" counter name "from_${l.k}"\n    oifname "${l.inetIf}" counter name "to_${l.k}"\n`)
    .join('');
  return `table ip ${INET_TABLE} {\n${counters}  chain forward {\n    type filter hook forward priority filter; policy accept;\n${rules}  }\n}\n`;
}

function routerRuleset(kind: NatKind, wan: string, lan: string): string {
  // Plain masquerade keeps the mapping per source (endpoint-independent mapping) and conntrack
  // only lets replies from the exact contacted ip:port back in (port-restricted filtering);
  // fully-random draws a new port per destination (endpoint-dependent mapping = symmetric).
  const masq = kind === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  // A network that lets only TCP out (some corporate, hotel and campus networks): every forwarded
  // UDP datagram dies here, both ways, before conntrack could let a reply back in.
  const udpBlock = kind === 'udp-blocked' ? `    meta l4proto udp counter drop\n` : '';
  return (
    `table ip ${ROUTER_TABLE} {\n` +
    // Only what the router forwards from its LAN: its own traffic (miniupnpd's STUN check on a
    // 'upnp-symmetric' router) leaves from its own ports, as on a real router's WAN address.
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    iifname "${lan}" oifname "${wan}" ${masq}\n  }\n` +
    // A home router's firewall: nothing unsolicited enters the LAN (port forwards via DNAT may).
    `  chain forward {\n    type filter hook forward priority filter; policy drop;\n${udpBlock}` +
    `    ct state established,related accept\n    ct status dnat accept\n    iifname "${lan}" oifname "${wan}" accept\n  }\n` +
    `}\n`
  );
}

/**
 * A symmetric NAT that allocates ports in sequence: every new UDP flow (conntrack runs the nat
 * chain once per flow) gets the next value of an nft counter, mapped to BASE + STEP·n. The map is
 * needed because nft writes a bare `numgen` into the port register in host byte order (measured:
 * `numgen inc mod N offset 40000` gave ports 16540, 16796, … i.e. byte-swapped, a step of 256).
 * Only UDP is sequential (TCP keeps plain masquerade) so that the control connection and TURN over
 * TCP do not shift the sequence; a real NAT may share one counter. Filtering is the home-router
 * firewall of the other kinds (address-and-port-dependent).
 */
export function sequentialRuleset(wan: string, lan: string, wanIp: string, base = SEQ_PORT_BASE, step = SEQ_PORT_STEP, count = SEQ_PORT_COUNT): string {
  if (!Number.isInteger(step) || step < 1 || !Number.isInteger(count) || count < 2 || base < 1024 || base + step * (count - 1) > 65535) {
    throw new Error(`sequential NAT ports out of range: base ${base}, step ${step}, count ${count}`);
  }
  const map = Array.from({ length: count }, (_, n) => `${n} : ${base + step * n}`).join(', ');
  return (
    `table ip ${ROUTER_TABLE} {\n` +
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n` +
    `    oifname "${wan}" meta l4proto udp snat to ${wanIp} : numgen inc mod ${count} map { ${map} }\n` +
    `    oifname "${wan}" masquerade\n  }\n` +
    `  chain forward {\n    type filter hook forward priority filter; policy drop;\n` +
    `    ct state established,related accept\n    ct status dnat accept\n    iifname "${lan}" oifname "${wan}" accept\n  }\n` +
    `}\n`
  );
}

/** How long a cone router keeps a mapping open to inbound traffic after the last packet out. */
export const CONE_MAPPING_SECONDS = 120;

function coneRouterRuleset(kind: ConeKind, wan: string, lan: string, hostIp: string): string {
  // Mapping: plain masquerade (endpoint-independent; with one host it keeps the port). Filtering:
  // a set records, after source NAT, what each mapping has sent out: its public port (full cone)
  // or the remote IP and its public port (address-restricted). A new inbound flow that matches is
  // sent to the host (DNAT keeps the port, which masquerade preserved); anything else meets the
  // same home-router firewall as the other kinds. The recording chain runs after srcnat (priority
  // 110), so it sees the translated source port.
  const key = kind === 'full-cone' ? 'udp sport' : 'ip daddr . udp sport';
  const inbound = kind === 'full-cone' ? 'udp dport' : 'ip saddr . udp dport';
  const type = kind === 'full-cone' ? 'inet_service' : 'ipv4_addr . inet_service';
  return (
    `table ip ${ROUTER_TABLE} {\n` +
    `  set mapped {\n    type ${type}\n    flags dynamic,timeout\n    timeout ${CONE_MAPPING_SECONDS}s\n  }\n` +
    `  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    iifname "${wan}" ${inbound} @mapped dnat to ${hostIp}\n  }\n` +
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "${wan}" masquerade\n  }\n` +
    `  chain record {\n    type filter hook postrouting priority 110; policy accept;\n    oifname "${wan}" meta l4proto udp update @mapped { ${key} }\n  }\n` +
    `  chain forward {\n    type filter hook forward priority filter; policy drop;\n` +
    `    ct state established,related accept\n    ct status dnat accept\n    iifname "${lan}" oifname "${wan}" accept\n  }\n` +
    `}\n`
  );
}

/** miniupnpd's nft objects (its nftables backend adds rules to these chains but creates none). */
export const UPNP_TABLE = 'lanrage_lab_upnp';
export const UPNP_CHAINS = { forward: 'miniupnpd', prerouting: 'prerouting_miniupnpd', postrouting: 'postrouting_miniupnpd' } as const;

function upnpRouterRuleset(kind: PortMapKind, wan: string, lan: string): string {
  // The home router of 'port-restricted' (or 'symmetric'), plus the inet table miniupnpd 2.3's nft backend expects
  // (Debian's nft_init.sh makes the same shape). Its DNAT rules carry the mapped ports; the
  // router's own forward chain lets DNATed flows in (ct status dnat), so the mapped port accepts
  // packets from anywhere while everything else stays port-restricted.
  const c = UPNP_CHAINS;
  return (
    routerRuleset(kind === 'upnp-symmetric' ? 'symmetric' : 'port-restricted', wan, lan) +
    `table inet ${UPNP_TABLE} {
` +
    `  chain forward {
    type filter hook forward priority filter; policy accept;
    jump ${c.forward}
  }
  chain ${c.forward} {
  }
` +
    `  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump ${c.prerouting}
  }
  chain ${c.prerouting} {
  }
` +
    `  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump ${c.postrouting}
  }
  chain ${c.postrouting} {
  }
` +
    `}
`
  );
}

/** The carrier's symmetric NAT (on the internet link) and the home router behind it. */
function cgnatRouters(l: LinkPlan, c: CarrierPlan, homeNs: string, homeLanIf: string, homeLanIp: string): NsPlan[] {
  const carrierIfs = [l.peerIf, c.carrierIf];
  const carrier: NsPlan = {
    name: c.ns,
    role: 'router',
    ifaces: carrierIfs,
    sysctls: sysctlsFor(carrierIfs, true),
    ipBatch: [
      'link set lo up',
      `addr add ${l.peerIp}/30 dev ${l.peerIf}`,
      `link set ${l.peerIf} up`,
      `addr add ${c.carrierIp}/30 dev ${c.carrierIf}`,
      `link set ${c.carrierIf} up`,
      `route add default via ${l.inetIp} dev ${l.peerIf}`,
    ],
    nft: routerRuleset('symmetric', l.peerIf, c.carrierIf),
  };
  const homeIfs = [c.homeIf, homeLanIf];
  const home: NsPlan = {
    name: homeNs,
    role: 'router',
    ifaces: homeIfs,
    sysctls: sysctlsFor(homeIfs, true),
    ipBatch: [
      'link set lo up',
      `addr add ${c.homeIp}/30 dev ${c.homeIf}`,
      `link set ${c.homeIf} up`,
      `addr add ${homeLanIp}/28 dev ${homeLanIf}`,
      `link set ${homeLanIf} up`,
      `route add default via ${c.carrierIp} dev ${c.homeIf}`,
    ],
    nft: routerRuleset('port-restricted', c.homeIf, homeLanIf),
  };
  return [carrier, home];
}

export function planLab(id: string, sites: ReadonlyArray<{ name: string; kind: NatKind }>): LabPlan {
  if (!ID_RE.test(id)) throw new Error(`lab id must match ${ID_RE}: ${JSON.stringify(id)}`);
  if (sites.length > MAX_SITES) throw new Error(`at most ${MAX_SITES} sites (got ${sites.length})`);
  const names = nsNamesOf(id);
  const seen = new Map<string, string>();
  const control = link(id, 0, names.ctl);
  const links: LinkPlan[] = [control];
  const sitePlans: SitePlan[] = [];
  const nsPlans: NsPlan[] = [];

  sites.forEach((s, index) => {
    if (!NAT_KINDS.includes(s.kind)) throw new Error(`site ${JSON.stringify(s.name)}: unknown NAT kind ${JSON.stringify(s.kind)}`);
    const slug = sanitizeSiteName(s.name);
    if (!SLUG_RE.test(slug)) throw new Error(`site name ${JSON.stringify(s.name)} has no [a-z0-9] characters`);
    if (['inet', 'ctl'].includes(slug)) throw new Error(`site name ${JSON.stringify(s.name)} is reserved`);
    const clash = seen.get(slug);
    if (clash !== undefined) throw new Error(`site names ${JSON.stringify(clash)} and ${JSON.stringify(s.name)} both become ${slug}`);
    seen.set(slug, s.name);

    const hostNs = names.host(slug);
    if (s.kind === 'public') {
      const l = link(id, links.length, hostNs);
      links.push(l);
      sitePlans.push({ name: s.name, slug, kind: s.kind, index, hostNs, routerNs: null, link: l, lanIf: null, routerLanIp: null, lanIp: l.peerIp, publicIp: l.peerIp, carrier: null });
      return;
    }
    const routerNs = names.router(slug);
    // Behind a carrier NAT, the internet link belongs to the carrier, not to the home router.
    const carrier = s.kind === 'cgnat' ? carrierPlan(id, index, names.carrier(slug)) : null;
    const l = link(id, links.length, carrier?.ns ?? routerNs);
    links.push(l);
    const lanIf = { router: `${NS_PREFIX}${id}l${index}a`, host: `${NS_PREFIX}${id}l${index}b` };
    sitePlans.push({
      name: s.name, slug, kind: s.kind, index, hostNs, routerNs, link: l, lanIf,
      routerLanIp: `${LAN_NET}.${16 * index + 1}`,
      lanIp: `${LAN_NET}.${16 * index + 2}`,
      publicIp: l.peerIp,
      carrier,
    });
  });
  if (links.length > MAX_LINKS) throw new Error(`too many internet links (${links.length} > ${MAX_LINKS})`);

  const wanNs = (l: LinkPlan, role: NsRole, extra: string[] = [], nft: string | null = null, forward = false): NsPlan => ({
    name: l.peerNs,
    role,
    ifaces: [l.peerIf, ...extra],
    sysctls: sysctlsFor([l.peerIf, ...extra], forward),
    ipBatch: [
      'link set lo up',
      `addr add ${l.peerIp}/30 dev ${l.peerIf}`,
      `link set ${l.peerIf} up`,
    ],
    nft,
  });

  const inetIfs = links.map((l) => l.inetIf);
  nsPlans.push({
    name: names.inet,
    role: 'inet',
    ifaces: inetIfs,
    sysctls: sysctlsFor(inetIfs, true),
    ipBatch: [
      'link set lo up',
      ...links.flatMap((l) => [`addr add ${l.inetIp}/30 dev ${l.inetIf}`, `link set ${l.inetIf} up`]),
      `route add ${CONTROL_ALT_IP}/32 via ${control.peerIp} dev ${control.inetIf}`,
    ],
    nft: inetRuleset(links),
  });
  const ctl = wanNs(control, 'control');
  ctl.ipBatch.push(`addr add ${CONTROL_ALT_IP}/32 dev ${control.peerIf}`, `route add default via ${control.inetIp} dev ${control.peerIf}`);
  nsPlans.push(ctl);

  for (const s of sitePlans) {
    if (s.routerNs === null || s.lanIf === null || s.routerLanIp === null) {
      const h = wanNs(s.link, 'host');
      h.ipBatch.push(`route add default via ${s.link.inetIp} dev ${s.link.peerIf}`);
      nsPlans.push(h);
      continue;
    }
    if (s.carrier) {
      nsPlans.push(...cgnatRouters(s.link, s.carrier, s.routerNs, s.lanIf.router, s.routerLanIp));
    } else {
      const nft = isConeKind(s.kind)
        ? coneRouterRuleset(s.kind, s.link.peerIf, s.lanIf.router, s.lanIp)
        : s.kind === 'symmetric-sequential'
          ? sequentialRuleset(s.link.peerIf, s.lanIf.router, s.link.peerIp)
          : isPortMapKind(s.kind)
            ? upnpRouterRuleset(s.kind, s.link.peerIf, s.lanIf.router)
          : routerRuleset(s.kind, s.link.peerIf, s.lanIf.router);
      const r = wanNs(s.link, 'router', [s.lanIf.router], nft, true);
      r.ipBatch.push(
        `addr add ${s.routerLanIp}/28 dev ${s.lanIf.router}`,
        `link set ${s.lanIf.router} up`,
        `route add default via ${s.link.inetIp} dev ${s.link.peerIf}`,
      );
      nsPlans.push(r);
    }
    nsPlans.push({
      name: s.hostNs,
      role: 'host',
      ifaces: [s.lanIf.host],
      sysctls: sysctlsFor([s.lanIf.host], false),
      ipBatch: [
        'link set lo up',
        `addr add ${s.lanIp}/28 dev ${s.lanIf.host}`,
        `link set ${s.lanIf.host} up`,
        `route add default via ${s.routerLanIp} dev ${s.lanIf.host}`,
      ],
      nft: null,
    });
  }

  // veth pairs are created directly inside their namespaces: nothing ever appears in the root
  // namespace, even for a moment.
  const rootBatch = [
    ...nsPlans.map((n) => `netns add ${n.name}`),
    ...links.map((l) => `link add ${l.inetIf} netns ${names.inet} type veth peer name ${l.peerIf} netns ${l.peerNs}`),
    ...sitePlans.flatMap((s) =>
      s.lanIf && s.routerNs ? [`link add ${s.lanIf.router} netns ${s.routerNs} type veth peer name ${s.lanIf.host} netns ${s.hostNs}`] : [],
    ),
    ...sitePlans.flatMap((s) =>
      s.carrier && s.routerNs ? [`link add ${s.carrier.carrierIf} netns ${s.carrier.ns} type veth peer name ${s.carrier.homeIf} netns ${s.routerNs}`] : [],
    ),
  ];

  return { id, inetNs: names.inet, ctlNs: names.ctl, control, controlAltIp: CONTROL_ALT_IP, sites: sitePlans, namespaces: nsPlans, rootBatch };
}
