/** Throughput, failures and runtime percentiles per task name, over a window and over time. */
import { builder } from "../builder.js";
import { every } from "../pubsub/streams.js";
import type { StatsBucket, TaskStats } from "../services/stats-service.js";

export const TaskStatsRef = builder.objectRef<TaskStats>("TaskStats").implement({
  fields: (t) => ({
    name: t.exposeString("name"),
    succeeded: t.exposeInt("succeeded"),
    failed: t.exposeInt("failed"),
    retried: t.exposeInt("retried"),
    revoked: t.exposeInt("revoked"),
    throughput: t.exposeFloat("throughput", { description: "Tasks finished per second." }),
    runtimeP50: t.exposeFloat("runtimeP50", { nullable: true }),
    runtimeP95: t.exposeFloat("runtimeP95", { nullable: true }),
    runtimeP99: t.exposeFloat("runtimeP99", { nullable: true }),
  }),
});

const StatsBucketRef = builder.objectRef<StatsBucket>("StatsBucket").implement({
  fields: (t) => ({
    at: t.expose("at", { type: "DateTime" }),
    succeeded: t.exposeInt("succeeded"),
    failed: t.exposeInt("failed"),
    runtimeP50: t.exposeFloat("runtimeP50", { nullable: true }),
    runtimeP95: t.exposeFloat("runtimeP95", { nullable: true }),
  }),
});

const MAX_WINDOW = 31 * 86400;

builder.queryFields((t) => ({
  stats: t.field({
    type: [TaskStatsRef],
    description: "Per task name, over the last `window` seconds (default: one hour).",
    args: {
      window: t.arg.int({ defaultValue: 3600 }),
      names: t.arg.stringList({ required: false }),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.stats.byName(clamp(args.window ?? 3600, 1, MAX_WINDOW), args.names),
  }),
  statsSeries: t.field({
    type: [StatsBucketRef],
    description: "Finished tasks and runtimes per bucket of `bucket` seconds, oldest first.",
    args: {
      window: t.arg.int({ defaultValue: 3600 }),
      bucket: t.arg.int({ defaultValue: 60 }),
      names: t.arg.stringList({ required: false }),
    },
    resolve: (_r, args, ctx) => {
      const window = clamp(args.window ?? 3600, 1, MAX_WINDOW);
      // At most 1,000 buckets, whatever was asked.
      const bucket = clamp(args.bucket ?? 60, Math.ceil(window / 1000), window);
      return ctx.services.stats.series(window, bucket, args.names);
    },
  }),
}));

builder.subscriptionFields((t) => ({
  stats: t.field({
    type: [TaskStatsRef],
    description: "The `stats` query again every `interval` seconds.",
    args: {
      interval: t.arg.int({ defaultValue: 5 }),
      window: t.arg.int({ defaultValue: 3600 }),
      names: t.arg.stringList({ required: false }),
    },
    subscribe: (_r, args, ctx) =>
      every(
        clamp(args.interval ?? 5, 1, 3600) * 1000,
        () => ctx.services.stats.byName(clamp(args.window ?? 3600, 1, MAX_WINDOW), args.names),
        // A database away for a moment (a restart) skips a beat rather than ending the stream.
        () => {},
      ),
    resolve: (stats) => stats,
  }),
}));

function clamp(n: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, n));
}
