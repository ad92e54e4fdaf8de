// A tiny typed publish/subscribe hub: producers (sampler, settings, later party and peers)
// publish; every Watch stream subscribes. Listener errors are isolated from the producer.
export class Hub<E> {
  private readonly listeners = new Set<(e: E) => void>();

  publish(e: E): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A broken stream must not stop the others from getting the event.
      }
    }
  }

  subscribe(l: (e: E) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get size(): number {
    return this.listeners.size;
  }
}
