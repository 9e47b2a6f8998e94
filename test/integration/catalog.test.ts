/**
 * The catalogue export example (examples/catalog.ts) as users run it: a worker started with the
 * CLI on the example app, 20,000 track ids sent as a chord of 20 slices, and `export_done` run
 * once with every slice's summary. Every id must be exported exactly once: the slices' files
 * together hold each id once. On Redis and on RabbitMQ, results in Redis.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { app, exportCatalog } from "../../examples/catalog.js";
import { kill, startUntil } from "../helpers/processes.js";
import {
  AMQP_URL,
  redisUrl,
  requireRabbitMQ,
  requireRedis,
  uniqueName,
} from "../helpers/services.js";

const BACKEND_URL = redisUrl(6);
const brokers = [
  { name: "Redis", url: BACKEND_URL },
  { name: "RabbitMQ", url: AMQP_URL },
];

describe("the catalogue export example", () => {
  let exportDir: string;

  beforeAll(async () => {
    await requireRedis();
    await requireRabbitMQ();
    exportDir = await mkdtemp(path.join(os.tmpdir(), "catalog-test-"));
  });

  afterAll(async () => {
    await app.close();
    await rm(exportDir, { recursive: true, force: true });
  });

  it.each(brokers)(
    "exports 20,000 tracks in 20 slices, each exactly once, on $name",
    async ({ url }) => {
      const queue = uniqueName("catalog");
      await app.close();
      app.configure({ broker: url, resultBackend: BACKEND_URL });
      const worker = await startUntil(
        "node",
        [
          "sdk/bin/celeriac.mjs",
          "worker",
          "--app",
          "examples/catalog.ts",
          "--broker",
          url,
          "--result-backend",
          BACKEND_URL,
          "-Q",
          queue,
          "-c",
          "4",
        ],
        /ready/,
        { env: { CATALOG_EXPORT_DIR: exportDir }, timeoutMs: 30_000 },
      );
      try {
        const trackIds = Array.from({ length: 20_000 }, (_, i) => `track-${i + 1}`);
        const result = await exportCatalog(trackIds, { queue }).delay();
        const done = await result.get({ timeout: 60 });
        expect(done).toMatchObject({ slices: 20, tracks: 20_000 });
        expect(done.exportId).toBeTruthy();

        const dir = path.join(exportDir, done.exportId!);
        const files = await readdir(dir);
        expect(files).toHaveLength(20);
        expect(done.files.map((f) => path.basename(f)).sort()).toEqual([...files].sort());
        const exported = new Map<string, number>();
        const firstOfEach: string[] = [];
        // export_done got the summaries in slice order: its files list follows the ids.
        for (const file of done.files) {
          const ids = (await readFile(file, "utf8"))
            .split("\n")
            .filter(Boolean)
            .map((line) => (JSON.parse(line) as { id: string }).id);
          firstOfEach.push(ids[0]!);
          for (const id of ids) exported.set(id, (exported.get(id) ?? 0) + 1);
        }
        expect(firstOfEach).toEqual(Array.from({ length: 20 }, (_, i) => `track-${i * 1000 + 1}`));
        expect(exported.size).toBe(20_000);
        expect([...exported.values()].every((n) => n === 1)).toBe(true);
        expect(trackIds.every((id) => exported.has(id))).toBe(true);
      } finally {
        await kill(worker.proc, "SIGTERM");
        await (await app.connect()).broker.deleteQueue(queue).catch(() => {});
      }
    },
    90_000,
  );
});
