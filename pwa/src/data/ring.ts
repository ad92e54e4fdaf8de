/** Fixed-capacity FIFO: the newest `capacity` items, oldest first. */
export class Ring<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  clear(): void {
    this.items.length = 0;
  }

  get size(): number {
    return this.items.length;
  }

  get last(): T | undefined {
    return this.items[this.items.length - 1];
  }

  /** A copy, so a caller cannot disturb the buffer. */
  toArray(): T[] {
    return this.items.slice();
  }
}
