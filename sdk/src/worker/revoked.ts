/**
 * The ids of revoked tasks, bounded as Celery's LimitedSet: at most `maxSize` entries, and
 * entries older than `maxAgeMs` dropped once the set is full.
 */
export class RevokedSet {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly maxSize = 50_000,
    private readonly maxAgeMs = 10_800_000,
  ) {}

  add(id: string, at = Date.now()): void {
    this.entries.delete(id);
    this.entries.set(id, at);
    if (this.entries.size > this.maxSize) this.purge(at);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get size(): number {
    return this.entries.size;
  }

  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** Entries as `[id, addedAt]`, oldest first. */
  toJSON(): Array<[string, number]> {
    return [...this.entries];
  }

  private purge(now: number): void {
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [id, at] of this.entries) {
      if (this.entries.size <= this.maxSize && now - at < this.maxAgeMs) break;
      this.entries.delete(id);
    }
  }
}
