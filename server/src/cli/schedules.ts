/**
 * `celeriac-server schedules list|show|create|update|enable|disable|delete|run`: periodic tasks
 * from a shell. Every change goes through the ScheduleService, as the GraphQL mutations do: the
 * same validation and messages, the same audit trail (actor `cli:<user>`), and the database
 * trigger that tells running beats at once.
 */
import os from "node:os";
import { type App, createApp } from "@celeriac/sdk";
import { Command } from "commander";
import { pino } from "pino";
import type { Viewer } from "../auth/roles.js";
import { appSender, type RunSender } from "../beat/message.js";
import type { ServerConfigInput } from "../config.js";
import { type Database, openDatabase } from "../db/database.js";
import { migrate } from "../db/migrate.js";
import { ApiError, type InputIssue, InvalidInputError, NotFoundError } from "../errors.js";
import type { PeriodicTask } from "../generated/prisma/client.js";
import { PubSub } from "../pubsub/pubsub.js";
import { AuditLog } from "../services/audit.js";
import { Redaction } from "../services/redaction.js";
import {
  type PeriodicTaskInput,
  type PeriodicTaskUpdate,
  type ScheduleInput,
  ScheduleService,
} from "../services/schedule-service.js";

export interface CliEnvironment {
  /** DATABASE_URL, or the process exits saying it is missing. */
  requireDatabase(): string;
  config(): ServerConfigInput;
}

/** Options shared by create and update; all strings, parsed here so errors read the same. */
interface EntryOptions {
  task?: string;
  every?: string;
  crontab?: string;
  tz?: string;
  solar?: string;
  lat?: string;
  lon?: string;
  clocked?: string;
  args?: string;
  kwargs?: string;
  queue?: string;
  priority?: string;
  expires?: string;
  expireSeconds?: string;
  startTime?: string;
  oneOff?: boolean;
  description?: string;
  missedRunPolicy?: string;
  enabled?: boolean;
  json?: boolean;
}

const PERIODS: Record<string, string> = {
  s: "seconds",
  sec: "seconds",
  secs: "seconds",
  second: "seconds",
  seconds: "seconds",
  m: "minutes",
  min: "minutes",
  mins: "minutes",
  minute: "minutes",
  minutes: "minutes",
  h: "hours",
  hour: "hours",
  hours: "hours",
  d: "days",
  day: "days",
  days: "days",
};

/** `30s`, `10m`, `2h`, `1d`, `90 seconds`. */
function parseEvery(text: string): NonNullable<ScheduleInput["interval"]> {
  const m = /^\s*(\d+)\s*([a-z]+)\s*$/i.exec(text);
  const period = m ? PERIODS[m[2]!.toLowerCase()] : undefined;
  if (!m || !period)
    throw new InvalidInputError(`invalid --every: ${text}`, [
      {
        path: ["schedule", "interval"],
        message: "expected a whole number and a unit: 30s, 10m, 2h, 1d (or 30 seconds)",
      },
    ]);
  return { every: Number(m[1]), period };
}

/** Five fields in cron's order; Celery's meaning (day of week 0 = Sunday, all fields must match). */
function parseCrontab(text: string, timezone: string | undefined): ScheduleInput["crontab"] {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5)
    throw new InvalidInputError(`invalid --crontab: ${text}`, [
      {
        path: ["schedule", "crontab"],
        message: `expected five fields, "minute hour day-of-month month day-of-week", got ${fields.length}`,
      },
    ]);
  const [minute, hour, dayOfMonth, monthOfYear, dayOfWeek] = fields;
  return { minute, hour, dayOfMonth, monthOfYear, dayOfWeek, timezone: timezone ?? "UTC" };
}

function parseJson(flag: string, field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(`invalid ${flag}: not JSON`, [
      { path: [field], message: (error as Error).message },
    ]);
  }
}

/** The schedule the flags give, if any; several or none are left for the service to refuse. */
function scheduleOf(o: EntryOptions): ScheduleInput | undefined {
  if (o.tz !== undefined && o.crontab === undefined)
    throw new InvalidInputError("--tz goes with --crontab", [
      { path: ["schedule", "crontab", "timezone"], message: "give --crontab too" },
    ]);
  if ((o.lat !== undefined || o.lon !== undefined) && o.solar === undefined)
    throw new InvalidInputError("--lat and --lon go with --solar", [
      { path: ["schedule", "solar"], message: "give --solar too" },
    ]);
  const schedule: ScheduleInput = {};
  if (o.every !== undefined) schedule.interval = parseEvery(o.every);
  if (o.crontab !== undefined) schedule.crontab = parseCrontab(o.crontab, o.tz);
  // Out-of-range or missing coordinates and bad times are the service's to refuse, in its words.
  if (o.solar !== undefined)
    schedule.solar = { event: o.solar, latitude: Number(o.lat), longitude: Number(o.lon) };
  if (o.clocked !== undefined) schedule.clocked = { clockedTime: new Date(o.clocked) };
  return Object.keys(schedule).length > 0 ? schedule : undefined;
}

/** The fields the flags set; those not given are left out (update leaves them as they are). */
function fieldsOf(o: EntryOptions): PeriodicTaskUpdate {
  const fields: PeriodicTaskUpdate = {};
  const schedule = scheduleOf(o);
  if (schedule) fields.schedule = schedule;
  if (o.task !== undefined) fields.task = o.task;
  if (o.args !== undefined) fields.args = parseJson("--args", "args", o.args);
  if (o.kwargs !== undefined) fields.kwargs = parseJson("--kwargs", "kwargs", o.kwargs);
  if (o.queue !== undefined) fields.queue = o.queue;
  if (o.priority !== undefined) fields.priority = Number(o.priority);
  if (o.expires !== undefined) fields.expires = new Date(o.expires);
  if (o.expireSeconds !== undefined) fields.expireSeconds = Number(o.expireSeconds);
  if (o.startTime !== undefined) fields.startTime = new Date(o.startTime);
  if (o.oneOff !== undefined) fields.oneOff = o.oneOff;
  if (o.description !== undefined) fields.description = o.description;
  if (o.missedRunPolicy !== undefined)
    fields.missedRunPolicy =
      o.missedRunPolicy.toLowerCase() as PeriodicTaskInput["missedRunPolicy"];
  if (o.enabled !== undefined) fields.enabled = o.enabled;
  // The service checks dates as dates: an unreadable one is named here, with its flag.
  for (const [key, value] of Object.entries(fields))
    if (value instanceof Date && Number.isNaN(value.getTime()))
      throw new InvalidInputError(`invalid --${kebab(key)}: not a time`, [
        { path: [key], message: "expected an ISO 8601 time, e.g. 2026-05-01T09:00:00+02:00" },
      ]);
  return fields;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The flag an issue's input path is about, so the message names what the user typed. */
function flagOf(path: string[]): string {
  const [first, kind, field] = path;
  // create takes the name as its argument, update as --name: "name" reads right for both.
  if (first === "name") return "name";
  if (first !== "schedule") return first ? `--${kebab(first)}` : "";
  if (kind === "interval") return "--every";
  if (kind === "crontab") return field === "timezone" ? "--tz" : "--crontab";
  if (kind === "solar")
    return field === "latitude" ? "--lat" : field === "longitude" ? "--lon" : "--solar";
  if (kind === "clocked") return "--clocked";
  return "--every, --crontab, --solar or --clocked";
}

function issueLine(issue: InputIssue): string {
  const flag = flagOf(issue.path);
  const where = issue.path.length ? ` (${issue.path.join(".")})` : "";
  return `  ${flag}${where}: ${issue.message}`;
}

/** The CLI's caller in the audit trail: no token, the operating system's user name. */
function cliViewer(): Viewer {
  let user = process.env.USER ?? process.env.LOGNAME ?? "unknown";
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the environment's name will do.
  }
  // An admin without a token: the audit trail stores a null token id for it (no API token row).
  return { tokenId: null, name: `cli:${user}`, role: "admin" };
}

function iso(d: Date | null | undefined): string {
  return d ? d.toISOString() : "—";
}

/** A time as UTC, and as the crontab's wall clock when it has its own zone. */
function when(entry: PeriodicTask, d: Date): string {
  const zone = entry.scheduleType === "crontab" ? entry.timezone : null;
  if (!zone || zone === "UTC") return d.toISOString();
  const local = d.toLocaleString("sv-SE", { timeZone: zone, hour12: false });
  return `${d.toISOString()} (${local} ${zone})`;
}

function asJson(service: ScheduleService, e: PeriodicTask, next: Date[]) {
  return {
    id: e.id,
    name: e.name,
    task: e.task,
    args: e.args,
    kwargs: e.kwargs,
    enabled: e.enabled,
    scheduleType: e.scheduleType,
    schedule: service.describe(e),
    queue: e.queue,
    oneOff: e.oneOff,
    nextRunAt: e.nextRunAt,
    nextRuns: next,
    lastRunAt: e.lastRunAt,
    totalRunCount: e.totalRunCount,
  };
}

function printEntry(service: ScheduleService, e: PeriodicTask, json: boolean | undefined): void {
  const next = service.nextRuns(e, 3);
  if (json) {
    console.log(JSON.stringify(asJson(service, e, next), null, 2));
    return;
  }
  const lines = [
    `${e.name} (${e.id}) ${e.enabled ? "enabled" : "disabled"}`,
    `  task      ${e.task} ${JSON.stringify(e.args)}${Object.keys(e.kwargs as object).length ? ` ${JSON.stringify(e.kwargs)}` : ""}`,
    `  schedule  ${service.describe(e)}`,
    `  next      ${e.enabled ? next.map((d) => when(e, d)).join(", ") || "none" : "— (disabled)"}`,
    `  last      ${iso(e.lastRunAt)} (${e.totalRunCount} run(s))`,
  ];
  console.log(lines.join("\n"));
}

interface Session {
  db: Database;
  service: ScheduleService;
  viewer: Viewer;
  find(ref: string): Promise<PeriodicTask>;
}

/**
 * Open the database (migrated, as `token create` does), run `body`, close everything. A typed
 * error is printed as the API would give it, with the flag at fault; the exit code is 2 for
 * invalid input, 1 for anything else.
 */
async function withService(
  env: CliEnvironment,
  options: { broker?: boolean },
  body: (s: Session) => Promise<void>,
): Promise<void> {
  const config = env.config();
  const databaseUrl = env.requireDatabase();
  if (options.broker && !config.brokerUrl) {
    console.error("BROKER_URL is not set (redis://…, amqp://…): it is where the task is sent");
    process.exit(2);
  }
  const db = await openDatabase(databaseUrl);
  let app: App | undefined;
  let pubsub: PubSub | null = null;
  try {
    await migrate(db);
    const logger = pino({ level: "warn", name: "celeriac-server" });
    let send: RunSender = async () => {
      throw new Error("no broker");
    };
    if (options.broker) {
      app = createApp({
        broker: config.brokerUrl,
        resultBackend: null,
        taskSendSentEvent: true,
      });
      send = appSender(app);
      if (config.pubsubUrl) {
        // So that the servers' `periodicTaskRuns` subscriptions hear of a run started here.
        pubsub = new PubSub(config.pubsubUrl);
        if (!(await pubsub.ready()))
          console.error(
            "warning: PUBSUB_URL is not reachable; running servers will not stream this run",
          );
      }
    }
    const service = new ScheduleService(
      db,
      new AuditLog(db, logger),
      new Redaction(config.redactTasks ?? []),
      send,
      pubsub,
    );
    const find = async (ref: string) => {
      const entry =
        (await db.prisma.periodicTask.findUnique({ where: { name: ref } })) ??
        (await service.get(ref));
      if (!entry) throw new NotFoundError("periodic task", ref);
      return entry;
    };
    await body({ db, service, viewer: cliViewer(), find });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    console.error(`error: ${error.message}`);
    if (error instanceof InvalidInputError)
      for (const i of error.issues) console.error(issueLine(i));
    process.exitCode = error instanceof InvalidInputError ? 2 : 1;
  } finally {
    await pubsub?.close();
    await app?.close();
    await db.close();
  }
}

function entryOptions(command: Command, creating: boolean): Command {
  return command
    .option("--task <name>", `the task to send, by name${creating ? " (required)" : ""}`)
    .option("--every <interval>", "an interval: 30s, 10m, 2h, 1d")
    .option(
      "--crontab <fields>",
      "Celery's crontab in cron's order, \"minute hour day-of-month month day-of-week\" (day of week 0 = Sunday; all fields must match)",
    )
    .option("--tz <zone>", "IANA time zone of --crontab (default UTC)")
    .option("--solar <event>", "sunrise, sunset, solar_noon, dawn_civil, dusk_nautical, …")
    .option("--lat <degrees>", "latitude for --solar")
    .option("--lon <degrees>", "longitude for --solar")
    .option("--clocked <time>", "once, at this ISO 8601 time")
    .option("--args <json>", "positional arguments, a JSON array (e.g. '[\"eu\"]')")
    .option("--kwargs <json>", "keyword arguments, a JSON object")
    .option("--queue <queue>", "queue to send to")
    .option("--priority <n>", "message priority, 0-255")
    .option("--expires <time>", "stop firing then; its messages expire then")
    .option("--expire-seconds <n>", "messages expire this long after being sent")
    .option("--start-time <time>", "no run before this")
    .option("--one-off", "disable after the first run")
    .option("--description <text>", "what it is for")
    .option("--missed-run-policy <policy>", "run_once (default), skip or run_all")
    .option("--json", "print the entry as JSON");
}

export function schedulesCommand(env: CliEnvironment): Command {
  const schedules = new Command("schedules").description(
    "periodic tasks: list, show, create, update, enable, disable, delete, run now (as the GraphQL mutations, audited as cli:<user>)",
  );

  schedules
    .command("list")
    .description("every periodic task: id, name, task, enabled, schedule, next run")
    .option("--json", "print JSON, one array")
    .action(async (opts: { json?: boolean }) =>
      withService(env, {}, async ({ db, service }) => {
        const entries = await db.prisma.periodicTask.findMany({
          orderBy: [{ name: "asc" }, { id: "asc" }],
        });
        if (opts.json) {
          const rows = entries.map((e) => asJson(service, e, service.nextRuns(e, 3)));
          console.log(JSON.stringify(rows, null, 2));
          return;
        }
        for (const e of entries)
          console.log(
            [
              e.id,
              e.name,
              e.task,
              e.enabled ? "enabled" : "disabled",
              service.describe(e),
              e.nextRunAt ? `next ${when(e, e.nextRunAt)}` : "next —",
            ].join("\t"),
          );
      }),
    );

  schedules
    .command("show <name-or-id>")
    .description("one periodic task with its next runs")
    .option("--json", "print JSON")
    .action(async (ref: string, opts: { json?: boolean }) =>
      withService(env, {}, async ({ service, find }) =>
        printEntry(service, await find(ref), opts.json),
      ),
    );

  entryOptions(
    schedules
      .command("create <name>")
      .description(
        "create a periodic task: --task and one of --every, --crontab, --solar, --clocked",
      ),
    true,
  )
    .option("--disabled", "create it disabled")
    .action(async (name: string, opts: EntryOptions & { disabled?: boolean }) =>
      withService(env, {}, async ({ service, viewer }) => {
        const fields = fieldsOf({ ...opts, ...(opts.disabled ? { enabled: false } : {}) });
        const created = await service.create(viewer, {
          ...fields,
          name,
          task: fields.task ?? "",
          schedule: fields.schedule ?? {},
        } as PeriodicTaskInput);
        printEntry(service, created, opts.json);
      }),
    );

  entryOptions(
    schedules
      .command("update <name-or-id>")
      .description("change the fields given; a schedule flag replaces the schedule"),
    false,
  )
    .option("--name <name>", "rename it")
    .option("--no-one-off", "no longer disable after the first run")
    .action(async (ref: string, opts: EntryOptions & { name?: string }) =>
      withService(env, {}, async ({ service, viewer, find }) => {
        const current = await find(ref);
        const patch = fieldsOf(opts);
        if (opts.name !== undefined) patch.name = opts.name;
        printEntry(service, await service.update(viewer, current.id, patch), opts.json);
      }),
    );

  for (const [verb, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const)
    schedules
      .command(`${verb} <name-or-id>`)
      .description(
        enabled ? "enable it: the next run is computed from now" : "disable it: no more runs",
      )
      .option("--json", "print JSON")
      .action(async (ref: string, opts: { json?: boolean }) =>
        withService(env, {}, async ({ service, viewer, find }) => {
          const current = await find(ref);
          printEntry(service, await service.setEnabled(viewer, current.id, enabled), opts.json);
        }),
      );

  schedules
    .command("delete <name-or-id>")
    .description("delete it, with its runs")
    .action(async (ref: string) =>
      withService(env, {}, async ({ service, viewer, find }) => {
        const deleted = await service.delete(viewer, (await find(ref)).id);
        console.log(`deleted ${deleted.name} (${deleted.id})`);
      }),
    );

  schedules
    .command("run <name-or-id>")
    .description(
      "send its task now, outside its schedule (BROKER_URL; PUBSUB_URL to tell the servers' live streams)",
    )
    .action(async (ref: string) =>
      withService(env, { broker: true }, async ({ service, viewer, find }) => {
        const entry = await find(ref);
        const run = await service.runNow(viewer, entry.id);
        console.log(`sent ${run.taskName} as task ${run.taskId}`);
      }),
    );

  return schedules;
}
