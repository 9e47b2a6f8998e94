/**
 * The services the integration suites need. Each check fails loudly, naming the service and the
 * command that starts it: a suite never skips because a service is down.
 */
import net from "node:net";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672//";
export const POSTGRES_URL =
  process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";

const HOW_TO_START: Record<string, string> = {
  Redis:
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  RabbitMQ: "rabbitmq-server -detached",
  PostgreSQL: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
};

function reachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function requireService(
  name: keyof typeof HOW_TO_START | string,
  url: string,
  defaultPort: number,
) {
  const u = new URL(url);
  const host = u.hostname || "127.0.0.1";
  const port = Number(u.port || defaultPort);
  if (!(await reachable(host, port))) {
    throw new Error(
      `${name} is not reachable at ${host}:${port}. This suite needs a real ${name}; start it with:\n  ${HOW_TO_START[name] ?? "(see the README's Tests section)"}`,
    );
  }
}

export const requireRedis = () => requireService("Redis", REDIS_URL, 6379);
export const requireRabbitMQ = () => requireService("RabbitMQ", AMQP_URL, 5672);
export const requirePostgres = () => requireService("PostgreSQL", POSTGRES_URL, 5432);

/** A Redis URL on a given database number, so suites do not step on each other. */
export function redisUrl(db: number): string {
  const u = new URL(REDIS_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A short random suffix for queue names private to one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}
