// Kept as an entry point for the tests: the RFC 5780 messages live in stun/binding.ts.
export {
  BINDING_ERROR, BINDING_REQUEST, BINDING_RESPONSE as BINDING_SUCCESS, CHANGE_IP, CHANGE_PORT, decodeNetcheckAnswer, encodeNetcheckRequest, type NetcheckAnswer,
} from './stun/binding.js';
