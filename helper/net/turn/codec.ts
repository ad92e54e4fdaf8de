// Kept as an entry point for the tests and the coturn test helpers: the codec is stun/codec.ts.
export * from '../stun/codec.js';
