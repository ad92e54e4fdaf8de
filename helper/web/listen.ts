import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// Starting and stopping the helper's HTTP(S) listeners (the local one and the phone one) alike.

/** Resolves with the bound port; rejects (and runs `onFail`) when the address cannot be bound. */
export function listenOn(server: Server, port: number, host: string, onFail: () => void = () => {}): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => {
      onFail();
      reject(err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes the server and every open connection: live streams would otherwise hold it open forever. */
export function closeServer(server: Server, alsoClose: () => void = () => {}): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
    alsoClose();
  });
}
