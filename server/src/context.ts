/** What every resolver gets: the caller, the database and the services. */
import type { Viewer } from "./auth/roles.js";
import type { Database } from "./db/database.js";
import type { Services } from "./services/index.js";

export interface Context {
  /** The caller, from its API token; null only before authentication has run. */
  viewer: Viewer | null;
  db: Database;
  services: Services;
  limits: { complexity: number; depth: number };
}
