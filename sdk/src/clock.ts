/** A Lamport clock, as Celery keeps one per app for events and control messages. */
export class LamportClock {
  private value = 0;

  /** Advance for a local event and return the new time. */
  forward(): number {
    return ++this.value;
  }

  /** Merge a time seen on a received message. */
  adjust(other: unknown): number {
    if (typeof other === "number" && Number.isFinite(other))
      this.value = Math.max(this.value, other) + 1;
    return this.value;
  }

  get current(): number {
    return this.value;
  }
}
