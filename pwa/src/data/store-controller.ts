// Binds a Lit element to liveStore: the element re-renders on every store change while connected.
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { liveStore, type LiveState } from './store.js';

export class LiveController implements ReactiveController {
  state: LiveState = liveStore.state;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly host: ReactiveControllerHost) {
    host.addController(this);
  }

  hostConnected(): void {
    this.unsubscribe = liveStore.subscribe((state) => {
      this.state = state;
      this.host.requestUpdate();
    });
  }

  hostDisconnected(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
