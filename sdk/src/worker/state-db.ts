/**
 * Revoked ids kept on disk between restarts (Celery's `--statedb`): a small JSON file, written
 * atomically (temp file and rename) shortly after each change and at shutdown.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import type { RevokedSet } from "./revoked.js";

/** Entries older than this are not restored (Celery's revoke expiry, 3 hours). */
const MAX_AGE_MS = 10_800_000;

export class StateDb {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly revoked: RevokedSet,
  ) {}

  async load(now = Date.now()): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    const data = JSON.parse(text) as { revoked?: Array<[string, number]> };
    let n = 0;
    for (const [id, at] of data.revoked ?? []) {
      if (now - at < MAX_AGE_MS) {
        this.revoked.add(id, at);
        n++;
      }
    }
    return n;
  }

  /** Write soon, coalescing bursts of revokes into one write. */
  scheduleSave(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, 200);
  }

  async save(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ revoked: this.revoked.toJSON() }));
    await rename(tmp, this.path);
  }
}
