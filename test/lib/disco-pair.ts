// Two disco boxes that know each other's keys: two helpers after the control plane introduced them.

import { DiscoBox, generateDiscoKey } from '../../helper/net/disco.js';

export function discoPair(): { a: DiscoBox; b: DiscoBox; ka: ReturnType<typeof generateDiscoKey>; kb: ReturnType<typeof generateDiscoKey> } {
  const ka = generateDiscoKey();
  const kb = generateDiscoKey();
  const a = new DiscoBox(ka.privateKey);
  const b = new DiscoBox(kb.privateKey);
  a.addPeer(kb.publicKey);
  b.addPeer(ka.publicKey);
  return { a, b, ka, kb };
}
