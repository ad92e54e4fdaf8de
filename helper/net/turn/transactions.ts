// Kept as an entry point for the tests: transactions are stun/transactions.ts.
export * from '../stun/transactions.js';
