/**
 * Shared by the api-*.test.ts suites: polling reads, Celery events published on a broker as a
 * worker would, and the audit trail of one action.
 */
import { type App, type CeleryEvent, EVENT_EXCHANGE, encodeEvents } from "@celeriac/sdk";
import { expect } from "vitest";
import type { TestServer } from "../helpers/server.js";

/** `read()` until `done`, or until `ms` passed: then the last value, for the assertion to show. */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type TaskRow = Record<string, unknown> & { id: string; state: string };

/** One task as the API serves it, with `fields` (a selection) and its timeline's types. */
export function readTask(t: TestServer, id: string, fields = "id name state") {
  return t
    .gql<{ task: TaskRow | null }>(`query ($id: ID!) { task(id: $id) { ${fields} } }`, { id })
    .then((r) => r.data?.task ?? null);
}

/** Wait until the task is stored in `state`, and return it. */
export async function taskIn(
  t: TestServer,
  id: string,
  state: string,
  fields = "id name state",
  ms = 15_000,
): Promise<TaskRow> {
  const row = await waitFor(
    () => readTask(t, id, fields),
    (r) => r?.state === state,
    ms,
  );
  expect(row, `task ${id}`).toMatchObject({ state });
  return row!;
}

/** Publish events on the broker's event exchange as one message (a `task.multi` batch if several). */
export async function publishEvents(app: App, events: CeleryEvent[]): Promise<void> {
  const { broker } = await app.connect();
  await broker.declareExchange(EVENT_EXCHANGE);
  const hostname = events[0]?.hostname ?? "events@test";
  await broker.publish(encodeEvents(events.length === 1 ? events[0]! : events, hostname), {
    exchange: EVENT_EXCHANGE.name,
    routingKey: events.length === 1 ? events[0]!.type.replace(/-/g, ".") : "task.multi",
  });
}

let clock = 1;

/** A task event as a worker sends it; `at` in milliseconds. */
export function taskEvent(
  type: string,
  uuid: string,
  at: number,
  fields: Record<string, unknown> = {},
  hostname = "events@test",
): CeleryEvent {
  return {
    type,
    uuid,
    hostname,
    utcoffset: 0,
    pid: 4242,
    clock: clock++,
    timestamp: at / 1000,
    ...fields,
  };
}

export interface AuditRow {
  action: string;
  actor: string;
  input: Record<string, unknown>;
  outcome: string;
  error: string | null;
}

/** The newest audit entries of one action (admin only). */
export async function audited(t: TestServer, action: string, first = 20): Promise<AuditRow[]> {
  const r = await t.gql<{ auditLog: { edges: Array<{ node: AuditRow }> } }>(
    `query ($action: String, $first: Int) { auditLog(action: $action, first: $first) {
      edges { node { action actor input outcome error } } } }`,
    { action, first },
  );
  return r.data?.auditLog.edges.map((e) => e.node) ?? [];
}
