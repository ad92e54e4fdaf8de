import type { GameProfile, MulticastGroup } from './profile.js';
import type { Detection } from './detector.js';

// What the LAN carriage must capture while the detected games run: the union of their profiles'
// discovery ports and groups, sorted and without duplicates. Pure, so that callers (the helper,
// the party-wide announcement) agree on one answer.

export interface ActiveDiscovery {
  udpPorts: number[];
  groups: MulticastGroup[];
}

export function activeDiscovery(detections: readonly Pick<Detection, 'profileId'>[], profiles: readonly GameProfile[]): ActiveDiscovery {
  const byId = new Map(profiles.map((p) => [p.id, p]));
  const ports = new Set<number>();
  const groups = new Map<string, MulticastGroup>();
  for (const d of detections) {
    const p = byId.get(d.profileId);
    if (!p) continue;
    for (const port of p.discovery.udpBroadcastPorts) ports.add(port);
    for (const g of p.discovery.multicastGroups) groups.set(`${g.group}:${g.port}`, { group: g.group, port: g.port });
  }
  const ipKey = (g: MulticastGroup): number => g.group.split('.').reduce((a, o) => a * 256 + Number(o), 0) * 65536 + g.port;
  return {
    udpPorts: [...ports].sort((a, b) => a - b),
    groups: [...groups.values()].sort((a, b) => ipKey(a) - ipKey(b)),
  };
}
