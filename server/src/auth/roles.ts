/**
 * Who is calling. A token has one role; roles nest: an operator can do what a viewer can, an
 * admin what an operator can.
 *  - viewer: reads everything;
 *  - operator: also sends, retries and revokes tasks, steers workers, purges queues, runs
 *    periodic tasks now;
 *  - admin: also manages API tokens and periodic task schedules.
 */
import type { Role } from "../config.js";

export interface Viewer {
  /** The API token it called with; null for the command line, which needs none. */
  tokenId: string | null;
  name: string;
  role: Role;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function hasRole(viewer: Viewer | null, required: Role): boolean {
  return viewer !== null && RANK[viewer.role] >= RANK[required];
}
