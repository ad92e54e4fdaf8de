// The part of gamedig 5 (MIT, ships no types) that helper/servers/query.ts uses.
declare module 'gamedig' {
  export interface GameDigResult {
    name: string;
    map: string;
    password: boolean;
    numplayers: number;
    maxplayers: number;
    players: unknown[];
    bots: unknown[];
    connect: string;
    ping: number;
  }
  export interface GameDigOptions {
    type: string;
    host: string;
    port?: number;
    givenPortOnly?: boolean;
    maxRetries?: number;
    socketTimeout?: number;
    attemptTimeout?: number;
    requestRules?: boolean;
  }
  export class GameDig {
    static query(o: GameDigOptions): Promise<GameDigResult>;
  }
  export const games: Record<string, { name: string; options: { protocol: string; port?: number; port_query?: number } }>;
}
