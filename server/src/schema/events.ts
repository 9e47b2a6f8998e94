/** Live streams: task events, task changes, worker events and task logs, as they are ingested. */
import { builder } from "../builder.js";
import type { TaskEventMessage, WorkerEventMessage } from "../pubsub/pubsub.js";
import { batches } from "../pubsub/streams.js";
import { TaskEventRef, TaskLogRef, TaskRef, withTaskName } from "./tasks.js";
import { WorkerRef } from "./workers.js";

const TaskEventFilter = builder.inputType("TaskEventFilter", {
  fields: (t) => ({
    taskIds: t.idList({ required: false }),
    names: t.stringList({ required: false }),
    types: t.stringList({ required: false, description: "Event types: task-started …" }),
    states: t.stringList({ required: false, description: "The task's state after the event." }),
  }),
});

const TaskEventUpdate = builder.objectRef<TaskEventMessage>("TaskEventUpdate").implement({
  description:
    "An event, and the task as stored once the batch that carried it was written (events arriving together share one task state: the latest).",
  fields: (t) => ({
    event: t.field({
      type: TaskEventRef,
      resolve: (m) => withTaskName({ ...m.event }, m.task.name) as never,
    }),
    task: t.field({ type: TaskRef, resolve: (m) => m.task }),
  }),
});

const WorkerEventUpdate = builder.objectRef<WorkerEventMessage>("WorkerEventUpdate").implement({
  fields: (t) => ({
    type: t.exposeString("type", {
      description: "worker-online, worker-heartbeat or worker-offline.",
    }),
    worker: t.field({ type: WorkerRef, resolve: (m) => m.worker }),
  }),
});

const oneOf = (values: readonly (string | number)[] | null | undefined, value: string | null) =>
  !values || values.length === 0 || (value !== null && values.map(String).includes(value));

const TaskEventBatch = builder.objectRef<TaskEventMessage[]>("TaskEventBatch").implement({
  description: "Task events that arrived together (within the batch's delay).",
  fields: (t) => ({
    events: t.field({ type: [TaskEventUpdate], resolve: (batch) => batch }),
  }),
});

type TaskEventFilterShape =
  | {
      taskIds?: readonly (string | number)[] | null;
      names?: readonly string[] | null;
      types?: readonly string[] | null;
      states?: readonly string[] | null;
    }
  | null
  | undefined;

const matchesTaskEvent = (filter: TaskEventFilterShape) => (m: TaskEventMessage) =>
  oneOf(filter?.taskIds, m.task.id) &&
  oneOf(filter?.names, m.task.name) &&
  oneOf(filter?.types, m.event.type) &&
  oneOf(filter?.states, m.task.state);

builder.subscriptionFields((t) => ({
  taskEvents: t.field({
    type: TaskEventUpdate,
    description:
      "Each task event as it is ingested. For busy fleets, taskEventBatches costs far less.",
    args: { filter: t.arg({ type: TaskEventFilter, required: false }) },
    subscribe: (_r, args, ctx) =>
      ctx.services.pubsub.subscribe("task:event", { filter: matchesTaskEvent(args.filter) }),
    resolve: (m) => m,
  }),
  taskEventBatches: t.field({
    type: TaskEventBatch,
    description:
      "Task events in batches: what arrived within `maxDelayMs` (default 50) of the batch's first, at most `maxSize` (default 500).",
    args: {
      filter: t.arg({ type: TaskEventFilter, required: false }),
      maxDelayMs: t.arg.int({ defaultValue: 50 }),
      maxSize: t.arg.int({ defaultValue: 500 }),
    },
    subscribe: (_r, args, ctx) =>
      batches(
        ctx.services.pubsub.subscribe("task:event", { filter: matchesTaskEvent(args.filter) }),
        Math.min(Math.max(args.maxDelayMs ?? 50, 0), 5000),
        Math.min(Math.max(args.maxSize ?? 500, 1), 5000),
      ),
    resolve: (batch) => batch,
  }),
  taskUpdated: t.field({
    type: TaskRef,
    description: "The task each time it changes.",
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_r, args, ctx) =>
      ctx.services.pubsub.subscribe("task:updated", {
        filter: (task) => task.id === String(args.id),
      }),
    resolve: (task) => task,
  }),
  workerEvents: t.field({
    type: WorkerEventUpdate,
    args: { hostname: t.arg.string({ required: false }) },
    subscribe: (_r, args, ctx) =>
      ctx.services.pubsub.subscribe("worker:event", {
        filter: (m) => !args.hostname || m.worker.hostname === args.hostname,
      }),
    resolve: (m) => m,
  }),
  taskLogs: t.field({
    type: TaskLogRef,
    description: "Log records as workers ship them; for one task, or all.",
    args: { taskId: t.arg.id({ required: false }) },
    subscribe: (_r, args, ctx) =>
      ctx.services.pubsub.subscribe("task:log", {
        filter: (log) => !args.taskId || log.taskId === String(args.taskId),
      }),
    resolve: (log) => log as never,
  }),
}));
