/**
 * A task with an argument schema (zod): the dashboard's "Run a task" form is generated from it,
 * and the control plane checks arguments against it before sending, as the worker does before
 * running.
 *
 * Run a worker on it (with the tasks of examples/tasks.ts, on the same app):
 *   npx celeriac worker --app examples/reports.ts
 */
import { defineTask } from "@celeriac/sdk";
import { z } from "zod";
import { app } from "./tasks.js";

export { app };

export const renderReport = app.task(
  defineTask("reports.render", {
    schemas: {
      args: z.tuple([
        z.string().min(1).max(80).meta({ title: "Title" }),
        z.enum(["pdf", "html", "csv"]).meta({ title: "Format" }),
        z.number().int().min(1).max(20).meta({ title: "Pages", description: "1 to 20" }),
        z.boolean().meta({ title: "Draft", description: "Watermarked, not archived" }),
      ]),
    },
  }),
  async (ctx, title, format, pages, draft) => {
    ctx.logger.info({ title, format, pages }, "rendering report");
    for (let page = 1; page <= pages; page++) {
      // Stands for laying out one page.
      await new Promise((resolve) => setTimeout(resolve, 40));
      if (page % 5 === 0) ctx.logger.debug({ page }, "page rendered");
    }
    const slug = title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "");
    ctx.logger.info({ pages }, "report rendered");
    return { file: `${slug || "report"}.${format}`, pages, draft };
  },
);
