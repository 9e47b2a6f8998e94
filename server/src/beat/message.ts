/**
 * How a periodic task becomes a message: sent by name with the entry's options, its task id
 * chosen beforehand (so a re-send is the same task), and the `periodic_task_name` header that
 * django-celery-beat adds.
 */
import type { App, SendOptions } from "@celeriac/sdk";
import type { MessageSource } from "./entry.js";

export const PERIODIC_TASK_NAME_HEADER = "periodic_task_name";

/** Sends the message of one run; the beat and "run now" both go through it. */
export type RunSender = (source: MessageSource, taskId: string) => Promise<void>;

/**
 * SendOptions plus the routing the SDK's producer honours (`exchange`, `routingKey`), which its
 * public type does not list yet.
 */
type RoutedSendOptions = SendOptions & { exchange?: string; routingKey?: string };

export function sendOptionsOf(source: MessageSource, taskId: string): RoutedSendOptions {
  const headers =
    source.headers && typeof source.headers === "object" && !Array.isArray(source.headers)
      ? (source.headers as Record<string, unknown>)
      : {};
  const expires =
    source.expires !== null ? new Date(source.expires) : (source.expireSeconds ?? undefined);
  return {
    taskId,
    headers: { ...headers, [PERIODIC_TASK_NAME_HEADER]: source.name },
    ...(source.queue ? { queue: source.queue } : {}),
    ...(source.exchange ? { exchange: source.exchange } : {}),
    ...(source.routingKey ? { routingKey: source.routingKey } : {}),
    ...(source.priority !== null ? { priority: source.priority } : {}),
    ...(expires !== undefined ? { expires } : {}),
  };
}

export function appSender(app: App): RunSender {
  return async (source, taskId) => {
    const args = Array.isArray(source.args) ? source.args : [];
    const kwargs =
      source.kwargs && typeof source.kwargs === "object" && !Array.isArray(source.kwargs)
        ? (source.kwargs as Record<string, unknown>)
        : {};
    await app.sendTask(source.task, args, kwargs, sendOptionsOf(source, taskId));
  };
}
