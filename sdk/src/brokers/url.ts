/** A URL with its password replaced, for logs and errors. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, "$1***@");
}

/**
 * The name of an in-memory broker, backend or lock store (`memory://name`; `memory://` is
 * "default"): those built with the same name share their state. `displayUrl` is how it is shown.
 */
export function memoryName(url: string): { name: string; displayUrl: string } {
  const name = url.replace(/^memory:\/\/\/?/, "") || "default";
  return { name, displayUrl: `memory://${name === "default" ? "" : name}` };
}

export const isRedisUrl = (u: unknown): u is string =>
  typeof u === "string" && /^rediss?:/i.test(u);

/**
 * The Redis URL behind a broker or backend option: the URL itself, or the URL a Redis broker or
 * backend instance was built with; undefined for anything else.
 */
export function redisUrlOf(source: unknown): string | undefined {
  if (isRedisUrl(source)) return source;
  const url = (source as { redisUrl?: unknown } | null | undefined)?.redisUrl;
  return isRedisUrl(url) ? url : undefined;
}
