/** @celeriac/server: the control plane as a library (buildApp) for embedding and tests. */
export { buildApp, type CeleriacServer } from "./app.js";
export { TokenService } from "./auth/token-service.js";
export { resolveConfig, type ServerConfig, type ServerConfigInput } from "./config.js";
export { type Database, openDatabase } from "./db/database.js";
export { migrate } from "./db/migrate.js";
