/**
 * API tokens: `cel_` followed by 32 random bytes (base64url). Only a SHA-256 of each is stored,
 * which is enough for tokens of that entropy (no password-style slow hash needed); the token
 * itself is returned once, when created, and never logged.
 *
 * A revocation is announced with NOTIFY, so that every server instance (and one revoked from
 * the command line) ends the token's open sessions at once.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Role } from "../config.js";
import type { Database } from "../db/database.js";
import type { ApiToken } from "../generated/prisma/client.js";
import type { Viewer } from "./roles.js";

const PREFIX = "cel_";
/** `lastUsedAt` is written at most this often per token, not on every request. */
const TOUCH_INTERVAL_MS = 60_000;
/** The NOTIFY channel of revocations; the payload is the revoked token's id. */
const REVOKED_CHANNEL = "celeriac_token_revoked";

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class TokenService {
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: Database) {}

  /** Create a token; the plain token is in the result and nowhere else. */
  async create(name: string, role: Role, token = PREFIX + randomBytes(32).toString("base64url")) {
    const record = await this.db.prisma.apiToken.create({
      data: { name, role, tokenHash: hashToken(token), prefix: token.slice(0, PREFIX.length + 6) },
    });
    return { token, record };
  }

  /** The caller a token stands for, or null when it is unknown or revoked. */
  async verify(token: string | null | undefined): Promise<Viewer | null> {
    if (!token) return null;
    const record = await this.db.prisma.apiToken.findUnique({
      where: { tokenHash: hashToken(token) },
    });
    if (!record || record.revokedAt) return null;
    const now = Date.now();
    if (now - (this.touched.get(record.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.touched.set(record.id, now);
      void this.db.prisma.apiToken
        .update({ where: { id: record.id }, data: { lastUsedAt: new Date(now) } })
        .catch(() => {});
    }
    return { tokenId: record.id, name: record.name, role: record.role as Role };
  }

  list(): Promise<ApiToken[]> {
    return this.db.prisma.apiToken.findMany({ orderBy: { createdAt: "desc" } });
  }

  async revoke(id: string): Promise<ApiToken | null> {
    const found = await this.db.prisma.apiToken.findUnique({ where: { id } });
    if (!found) return null;
    const revoked = await this.db.prisma.apiToken.update({
      where: { id },
      data: { revokedAt: found.revokedAt ?? new Date() },
    });
    await this.db.query("SELECT pg_notify($1, $2)", [REVOKED_CHANNEL, id]);
    return revoked;
  }

  /**
   * Call `listener` with each token's id as it is revoked, by any process using this database
   * (open WebSocket sessions are closed on it). After the database connection was lost and made
   * again, with every revoked token's id, since what was announced meanwhile is unknown.
   * Returns a function that stops listening.
   */
  onRevoke(listener: (tokenId: string) => void): Promise<() => Promise<void>> {
    return this.db.listen(REVOKED_CHANNEL, (payload) => {
      if (payload !== "*") return listener(payload);
      void this.db.prisma.apiToken
        .findMany({ where: { revokedAt: { not: null } }, select: { id: true } })
        .then((rows) => {
          for (const { id } of rows) listener(id);
        })
        .catch(() => {});
    });
  }

  count(): Promise<number> {
    return this.db.prisma.apiToken.count({ where: { revokedAt: null } });
  }
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
