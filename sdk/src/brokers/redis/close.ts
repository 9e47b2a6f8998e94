/**
 * Closing an ioredis client so that nothing waits on it forever. Our clients queue commands
 * through reconnections (`maxRetriesPerRequest: null`), and ioredis fails the queued ones only
 * when a connection closes: a `disconnect()` that comes between two reconnection attempts has no
 * connection left to close, so they would stay pending for good.
 */
import type { Redis } from "ioredis";

/** The parts of ioredis's client that `disconnect()` would have used through its close handler. */
interface ClientInternals {
  setStatus?(status: string): void;
  flushQueue?(error: Error): void;
}

/** Disconnect now; commands still queued fail with ioredis's own "Connection is closed." error. */
export function closeRedis(client: Redis): void {
  const betweenAttempts = client.status === "reconnecting";
  client.disconnect();
  if (!betweenAttempts) return;
  const internals = client as unknown as ClientInternals;
  internals.setStatus?.("end");
  internals.flushQueue?.(new Error("Connection is closed."));
}
