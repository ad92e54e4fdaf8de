// Waiting for a control client's events in tests.
import type { ControlClient, ControlClientEvents } from '../../helper/controlclient/client.js';

/** Resolves with the first event `name` whose arguments satisfy `pred`; rejects after `ms`. */
export function nextEvent<K extends keyof ControlClientEvents>(c: ControlClient, name: K, pred: (...args: ControlClientEvents[K]) => boolean = () => true, ms = 5000): Promise<ControlClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off(name, on as never);
      reject(new Error(`timed out waiting for ${String(name)} on ${c.deviceId}`));
    }, ms);
    const on = (...args: ControlClientEvents[K]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      c.off(name, on as never);
      resolve(args);
    };
    c.on(name, on as never);
  });
}
