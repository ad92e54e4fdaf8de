// The TURN client: one allocation on one relay (coturn), over the helper's shared UDP socket, a
// UDP socket of its own, or TCP. See client.ts for the behaviour, codec.ts and framing.ts for the wire.

export {
  TurnClient, TurnError, DEFAULT_TURN_TIMING,
  type TurnClientEvents, type TurnClientOptions, type TurnCredentials, type TurnServer, type TurnState, type TurnStats, type TurnTiming,
} from './client.js';
export type { DatagramTransport } from './transport.js';
export { TransactionTimeout, type RetransmitTiming } from '../stun/transactions.js';
export { isChannelNumber, encodeChannelData, decodeChannelData, StreamFramer } from './framing.js';
