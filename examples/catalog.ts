/**
 * Exporting a music catalogue as a workflow: the track ids are cut into slices of 1,000, one
 * `catalog.export_tracks` task exports each slice (in parallel, on any number of workers), and
 * `catalog.export_done` runs once with every slice's summary, in slice order. It is a chord: no
 * worker waits for the slices; the chord counter in the result backend sends `export_done` when
 * the last slice is done, and if a slice fails, `export_done` fails instead of running.
 *
 * Run a worker on them (with the tasks of examples/tasks.ts, on the same app):
 *   RESULT_BACKEND=redis://127.0.0.1:6379/1 npx celeriac worker --app examples/catalog.ts
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chord, type SignatureOptions } from "@celeriac/sdk";
import { app } from "./tasks.js";

export { app };

/** Where exports are written: a folder per export, a file per slice. */
const exportRoot = () =>
  process.env.CATALOG_EXPORT_DIR ?? path.join(os.tmpdir(), "celeriac-catalog-exports");

/** What a slice's export returns. */
export interface SliceSummary {
  /** The export the slice belongs to (the chord's group id, shared by its slices). */
  exportId: string;
  file: string;
  tracks: number;
  first: string | null;
  last: string | null;
}

/** Export one slice of tracks to its own file (a slice run again overwrites its own file). */
export const exportTracks = app.task(
  "catalog.export_tracks",
  async (ctx, trackIds: string[]): Promise<SliceSummary> => {
    const exportId = ctx.groupId ?? ctx.id;
    const dir = path.join(exportRoot(), exportId);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${ctx.id}.ndjson`);
    const exportedAt = new Date().toISOString();
    await writeFile(file, trackIds.map((id) => `${JSON.stringify({ id, exportedAt })}\n`).join(""));
    return {
      exportId,
      file,
      tracks: trackIds.length,
      first: trackIds[0] ?? null,
      last: trackIds.at(-1) ?? null,
    };
  },
);

/** Runs once, after every slice: the export's totals. */
export const exportDone = app.task("catalog.export_done", (ctx, summaries: SliceSummary[]) => {
  ctx.logger.info({ slices: summaries.length }, "catalog export done");
  return {
    exportId: summaries[0]?.exportId ?? null,
    slices: summaries.length,
    tracks: summaries.reduce((n, s) => n + s.tracks, 0),
    files: summaries.map((s) => s.file),
  };
});

/** `items` cut into consecutive slices of `size`. */
export function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The export workflow, ready to send: `await exportCatalog(ids).delay()` gives the result of
 * `export_done`. Options (a queue, a priority …) apply to every task of the workflow.
 *
 * Each slice is one call of `export_tracks` with its 1,000 ids. (Celery's `chunks` is
 * different: it calls a task once per argument tuple, inside one task per chunk; see README.)
 */
export function exportCatalog(
  trackIds: readonly string[],
  { sliceSize = 1000, ...options }: SignatureOptions & { sliceSize?: number } = {},
) {
  return chord(
    slices(trackIds, sliceSize).map((slice) => exportTracks.s(slice).set(options)),
    exportDone.s().set(options),
  );
}
