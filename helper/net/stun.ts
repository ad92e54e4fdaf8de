// Kept as an entry point for the tests and the lab's STUN answerer: the Binding codec and client
// live in stun/ (binding.ts, client.ts).
import { ATTR } from './stun/codec.js';
export { BINDING_REQUEST, BINDING_RESPONSE, decodeStun, encodeBindingRequest, encodeBindingResponse, type StunDecoded } from './stun/binding.js';
export { natFromAnswers, StunClient, STUN_FINAL_WAIT_MS, STUN_RETRANSMIT_MS, type NatInfo, type NatMapping } from './stun/client.js';
export const ATTR_MAPPED_ADDRESS = ATTR.MAPPED_ADDRESS;
export const ATTR_XOR_MAPPED_ADDRESS = ATTR.XOR_MAPPED_ADDRESS;
