/**
 * The audit trail: every mutation is recorded with who called it, its input and how it ended,
 * whether it succeeded or not.
 */
import type { Logger } from "pino";
import type { Viewer } from "../auth/roles.js";
import type { Database } from "../db/database.js";
import type { Prisma } from "../generated/prisma/client.js";

export class AuditLog {
  constructor(
    private readonly db: Database,
    private readonly logger?: Logger,
  ) {}

  /** Run `action` and record it; the error, if any, is recorded and rethrown. */
  async record<T>(
    viewer: Viewer | null,
    action: string,
    input: Record<string, unknown>,
    run: () => Promise<T>,
  ): Promise<T> {
    const entry = {
      tokenId: viewer?.tokenId ?? null,
      actor: viewer?.name ?? "anonymous",
      action,
      input: input as Prisma.InputJsonValue,
    };
    let result: T;
    try {
      result = await run();
    } catch (error) {
      await this.db.prisma.auditEntry
        .create({ data: { ...entry, outcome: "error", error: (error as Error).message } })
        .catch(() => {});
      throw error;
    }
    // Done is done: a record that cannot be written must not turn a success into an error
    // (a caller would retry, and send a task twice). It is logged instead.
    await this.db.prisma.auditEntry
      .create({ data: { ...entry, outcome: "ok" } })
      .catch((error) =>
        this.logger?.error({ err: error, action, actor: entry.actor }, "audit record not written"),
      );
    return result;
  }

  /** A mutation refused for the caller's role: recorded, without waiting for the write. */
  denied(viewer: Viewer | null, action: string, requiredRole: string): void {
    void this.db.prisma.auditEntry
      .create({
        data: {
          tokenId: viewer?.tokenId ?? null,
          actor: viewer?.name ?? "anonymous",
          action,
          input: {},
          outcome: "error",
          error: `forbidden: needs the ${requiredRole} role`,
        },
      })
      .catch((error) => this.logger?.error({ err: error, action }, "audit record not written"));
  }
}
