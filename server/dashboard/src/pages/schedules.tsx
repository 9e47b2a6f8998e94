/**
 * Schedules: periodic tasks with their next fire times; create, edit, enable, disable, delete
 * (admin), run one now (operator), and each one's recent runs. The list follows the beat's runs
 * live (periodicTaskRuns).
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery } from "urql";
import {
  ConfirmButton,
  Json,
  Loading,
  ProblemBox,
  StateBadge,
  useNow,
  useToast,
} from "../components/ui.js";
import {
  CreatePeriodicTask,
  DeletePeriodicTask,
  type IntervalPeriod,
  type MissedRunPolicy,
  type PeriodicTask,
  type PeriodicTaskInput,
  PeriodicTaskQuery,
  PeriodicTaskRuns,
  PeriodicTasksQuery,
  RegisteredTasksQuery,
  RunPeriodicTaskNow,
  SetPeriodicTaskEnabled,
  type SolarEvent,
  UpdatePeriodicTask,
} from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, type Problem, problemOfTransport } from "../lib/errors.js";
import { formatDateTime, relative, shortId } from "../lib/format.js";
import { useEach } from "../lib/live.js";
import { dateToWallTime, localZone, timeZones, wallTimeToDate } from "../lib/zones.js";

/** Refetch (at most every 500 ms) when the beat sends something. */
function useRunsRefresh(refetch: () => void, periodicTaskId?: string) {
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEach(PeriodicTaskRuns, {}, (d) => {
    if (periodicTaskId && d.periodicTaskRuns.periodicTaskId !== periodicTaskId) return;
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      refetch();
    }, 500);
  });
  useEffect(() => () => clearTimeout(pending.current ?? undefined), []);
}

type Ref = { id: string; name: string };

function useScheduleActions() {
  const toast = useToast();
  const [, setEnabled] = useMutation(SetPeriodicTaskEnabled);
  const [, runNow] = useMutation(RunPeriodicTaskNow);
  const [, remove] = useMutation(DeletePeriodicTask);
  return {
    async setEnabled(p: Ref, enabled: boolean) {
      const r = outcome(await setEnabled({ id: p.id, enabled }), "setPeriodicTaskEnabled");
      if (r.problem) toast({ kind: "error", ...r.problem });
      else toast({ kind: "ok", title: `${p.name}: ${enabled ? "enabled" : "disabled"}` });
    },
    async runNow(p: Ref) {
      const r = outcome<{ taskId: string }>(await runNow({ id: p.id }), "runPeriodicTaskNow");
      if (r.problem) toast({ kind: "error", ...r.problem });
      else
        toast({
          kind: "ok",
          title: `${p.name}: sent`,
          body: <Link to={`/tasks/${r.ok.taskId}`}>task {shortId(r.ok.taskId)}</Link>,
        });
    },
    async remove(p: Ref): Promise<boolean> {
      const r = outcome(await remove({ id: p.id }), "deletePeriodicTask");
      if (r.problem) toast({ kind: "error", ...r.problem });
      else toast({ kind: "ok", title: `${p.name}: deleted` });
      return !r.problem;
    },
  };
}

export function SchedulesPage() {
  const isAdmin = useCan("admin");
  const canOperate = useCan("operator");
  const now = useNow(1000);
  const [pages, setPages] = useState<Array<string | null>>([null]);
  const after = pages[pages.length - 1] ?? null;
  const [{ data, error, fetching }, refetch] = useQuery({
    query: PeriodicTasksQuery,
    variables: { after },
    requestPolicy: "cache-and-network",
  });
  useRunsRefresh(() => refetch({ requestPolicy: "network-only" }));
  const actions = useScheduleActions();
  const list = data?.periodicTasks.edges.map((e) => e.node) ?? [];

  return (
    <section>
      <div className="row spread">
        <h1>Schedules</h1>
        {isAdmin && (
          <Link className="button primary" to="/schedules/new">
            New schedule
          </Link>
        )}
      </div>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {!data && fetching && <Loading />}
      {data && list.length === 0 && (
        <p className="muted">
          No periodic task yet.
          {isAdmin ? " Create one: it is sent by the beat on its schedule." : ""}
        </p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table className="schedules">
            <thead>
              <tr>
                <th>On</th>
                <th>Name</th>
                <th className="wide">Task</th>
                <th>Schedule</th>
                <th>Next run</th>
                <th className="wide">Last run</th>
                <th className="num wide">Runs</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.map((p) => (
                <tr
                  key={p.id}
                  data-schedule={p.name}
                  className={p.enabled ? undefined : "disabled"}
                >
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`${p.enabled ? "Disable" : "Enable"} ${p.name}`}
                      checked={p.enabled}
                      disabled={!isAdmin}
                      onChange={(e) => void actions.setEnabled(p, e.target.checked)}
                    />
                  </td>
                  <td>
                    <Link to={`/schedules/${p.id}`}>{p.name}</Link>
                  </td>
                  <td className="wide">
                    <code>{p.task}</code>
                  </td>
                  <td data-testid="schedule-description">{p.scheduleDescription}</td>
                  <td title={formatDateTime(p.nextRunAt)}>
                    {p.nextRunAt ? relative(p.nextRunAt, now) : "—"}
                  </td>
                  <td className="wide" title={formatDateTime(p.lastRunAt)}>
                    {p.lastRunAt ? relative(p.lastRunAt, now) : "never"}
                  </td>
                  <td className="num wide">{p.totalRunCount}</td>
                  <td className="row end nowrap">
                    {canOperate && (
                      <button type="button" onClick={() => void actions.runNow(p)}>
                        Run now
                      </button>
                    )}
                    {isAdmin && <Link to={`/schedules/${p.id}/edit`}>Edit</Link>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {(pages.length > 1 || data?.periodicTasks.pageInfo.hasNextPage) && (
        <div className="row pager">
          <button
            type="button"
            disabled={pages.length === 1}
            onClick={() => setPages((p) => p.slice(0, -1))}
          >
            ← Previous
          </button>
          <span className="muted">{data?.periodicTasks.totalCount} schedules</span>
          <button
            type="button"
            disabled={!data?.periodicTasks.pageInfo.hasNextPage}
            onClick={() => {
              const end = data?.periodicTasks.pageInfo.endCursor;
              if (end) setPages((p) => [...p, end]);
            }}
          >
            Next →
          </button>
        </div>
      )}
    </section>
  );
}

export function SchedulePage() {
  const { id = "" } = useParams();
  const isAdmin = useCan("admin");
  const canOperate = useCan("operator");
  const navigate = useNavigate();
  const now = useNow(1000);
  const [{ data, error, fetching }, refetch] = useQuery({
    query: PeriodicTaskQuery,
    variables: { id },
    requestPolicy: "cache-and-network",
  });
  useRunsRefresh(() => refetch({ requestPolicy: "network-only" }), id);
  const actions = useScheduleActions();
  const p = data?.periodicTask;
  if (error) return <ProblemBox problem={problemOfTransport(error)} />;
  if (!p) return fetching ? <Loading /> : <p>No such schedule.</p>;

  return (
    <section>
      <div className="row spread wrap">
        <h1>
          {p.name}{" "}
          <span className={`badge ${p.enabled ? "ok" : "muted"}`}>
            {p.enabled ? "enabled" : "disabled"}
          </span>
        </h1>
        <div className="row wrap actions">
          {canOperate && (
            <button type="button" onClick={() => void actions.runNow(p)}>
              Run now
            </button>
          )}
          {isAdmin && (
            <>
              <Link className="button" to={`/schedules/${p.id}/edit`}>
                Edit
              </Link>
              <button type="button" onClick={() => void actions.setEnabled(p, !p.enabled)}>
                {p.enabled ? "Disable" : "Enable"}
              </button>
              <ConfirmButton
                label="Delete"
                title={`Delete ${p.name}?`}
                body="The beat stops sending it; its run history goes too."
                confirmLabel="Delete"
                danger
                onConfirm={async () => {
                  if (await actions.remove(p)) navigate("/schedules");
                }}
              />
            </>
          )}
        </div>
      </div>
      {p.description && <p>{p.description}</p>}
      <dl className="facts">
        <div>
          <dt>Task</dt>
          <dd>
            <Link to={`/tasks?name=${encodeURIComponent(p.task)}`}>
              <code>{p.task}</code>
            </Link>
          </dd>
        </div>
        <div>
          <dt>Schedule</dt>
          <dd data-testid="schedule-description">{p.scheduleDescription}</dd>
        </div>
        <div>
          <dt>Next run</dt>
          <dd>
            {p.nextRunAt ? `${formatDateTime(p.nextRunAt)} (${relative(p.nextRunAt, now)})` : "—"}
          </dd>
        </div>
        <div>
          <dt>Last run</dt>
          <dd>{p.lastRunAt ? formatDateTime(p.lastRunAt) : "never"}</dd>
        </div>
        <div>
          <dt>Runs</dt>
          <dd>{p.totalRunCount}</dd>
        </div>
        {p.queue && (
          <div>
            <dt>Queue</dt>
            <dd>{p.queue}</dd>
          </div>
        )}
        <div>
          <dt>Missed runs</dt>
          <dd>{p.missedRunPolicy.toLowerCase().replace("_", " ")}</dd>
        </div>
        {p.oneOff && (
          <div>
            <dt>One-off</dt>
            <dd>yes</dd>
          </div>
        )}
      </dl>
      <div className="two">
        <div>
          <h2>Arguments</h2>
          <Json value={p.args} />
          <Json value={p.kwargs} />
        </div>
        <div>
          <h2>Next times</h2>
          <ul className="plain">
            {p.nextRuns.map((t) => (
              <li key={t}>
                {formatDateTime(t)} <span className="muted">({relative(t, now)})</span>
              </li>
            ))}
            {p.nextRuns.length === 0 && <li className="muted">none</li>}
          </ul>
        </div>
      </div>
      <h2>Recent runs</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Sent</th>
              <th>Trigger</th>
              <th className="wide">For</th>
              <th>Status</th>
              <th>Task</th>
            </tr>
          </thead>
          <tbody>
            {p.runs.edges.map(({ node: r }) => (
              <tr key={r.id}>
                <td>{formatDateTime(r.sentAt ?? r.decidedAt)}</td>
                <td>{r.trigger.replace("_", " ")}</td>
                <td className="wide">{r.scheduledFor ? formatDateTime(r.scheduledFor) : "—"}</td>
                <td>
                  {r.status}
                  {r.error && <span className="bad small"> {r.error}</span>}
                </td>
                <td>
                  <Link to={`/tasks/${r.taskId}`}>
                    <code>{shortId(r.taskId)}</code>
                  </Link>{" "}
                  {r.task && <StateBadge state={r.task.state} />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {p.runs.edges.length === 0 && <p className="muted">No run yet.</p>}
      </div>
    </section>
  );
}

type Kind = "interval" | "crontab" | "solar" | "clocked";

const PERIODS: IntervalPeriod[] = ["SECONDS", "MINUTES", "HOURS", "DAYS"];
const SOLAR: SolarEvent[] = [
  "SUNRISE",
  "SUNSET",
  "SOLAR_NOON",
  "DAWN_ASTRONOMICAL",
  "DAWN_NAUTICAL",
  "DAWN_CIVIL",
  "DUSK_CIVIL",
  "DUSK_NAUTICAL",
  "DUSK_ASTRONOMICAL",
];
const POLICIES: Array<[MissedRunPolicy, string]> = [
  ["RUN_ONCE", "run once for all missed times"],
  ["SKIP", "skip them"],
  ["RUN_ALL", "run each (up to the maximum)"],
];
const CRON_PRESETS: Array<[string, [string, string, string, string, string]]> = [
  ["every minute", ["*", "*", "*", "*", "*"]],
  ["every 15 min", ["*/15", "*", "*", "*", "*"]],
  ["hourly", ["0", "*", "*", "*", "*"]],
  ["daily 09:00", ["0", "9", "*", "*", "*"]],
  ["weekdays 09:00", ["0", "9", "mon-fri", "*", "*"]],
  ["1st of month", ["0", "0", "*", "1", "*"]],
];

interface Draft {
  name: string;
  task: string;
  description: string;
  kind: Kind;
  every: string;
  period: IntervalPeriod;
  cron: [string, string, string, string, string];
  timezone: string;
  solarEvent: SolarEvent;
  latitude: string;
  longitude: string;
  clocked: string;
  clockedZone: string;
  args: string;
  kwargs: string;
  queue: string;
  priority: string;
  expireSeconds: string;
  startTime: string;
  expires: string;
  oneOff: boolean;
  enabled: boolean;
  missedRunPolicy: MissedRunPolicy;
  maxMissedRuns: string;
}

const local = (iso: string | null) => (iso ? dateToWallTime(new Date(iso), localZone()) : "");

function draftOf(p: PeriodicTask | null | undefined): Draft {
  const zone = localZone();
  const d: Draft = {
    name: p?.name ?? "",
    task: p?.task ?? "",
    description: p?.description ?? "",
    kind: "interval",
    every: "10",
    period: "MINUTES",
    cron: ["0", "9", "*", "*", "*"],
    timezone: zone,
    solarEvent: "SUNRISE",
    latitude: "",
    longitude: "",
    clocked: dateToWallTime(new Date(Date.now() + 3600_000), zone),
    clockedZone: zone,
    args: JSON.stringify(p?.args ?? []),
    kwargs: JSON.stringify(p?.kwargs ?? {}),
    queue: p?.queue ?? "",
    priority: p?.priority === null || p?.priority === undefined ? "" : String(p.priority),
    expireSeconds: p?.expireSeconds ? String(p.expireSeconds) : "",
    startTime: local(p?.startTime ?? null),
    expires: local(p?.expires ?? null),
    oneOff: p?.oneOff ?? false,
    enabled: p?.enabled ?? true,
    missedRunPolicy: p?.missedRunPolicy ?? "RUN_ONCE",
    maxMissedRuns: String(p?.maxMissedRuns ?? 10),
  };
  const s = p?.schedule;
  if (s?.__typename === "IntervalSchedule") {
    d.kind = "interval";
    d.every = String(s.every);
    d.period = s.period;
  } else if (s?.__typename === "CrontabSchedule") {
    d.kind = "crontab";
    d.cron = [s.minute, s.hour, s.dayOfWeek, s.dayOfMonth, s.monthOfYear];
    d.timezone = s.timezone;
  } else if (s?.__typename === "SolarSchedule") {
    d.kind = "solar";
    d.solarEvent = s.event;
    d.latitude = String(s.latitude);
    d.longitude = String(s.longitude);
  } else if (s?.__typename === "ClockedSchedule") {
    d.kind = "clocked";
    d.clocked = dateToWallTime(new Date(s.clockedTime), zone);
  }
  return d;
}

/** The draft as the API's input, or the first thing wrong with it. */
function inputOf(d: Draft, zones: string[]): PeriodicTaskInput {
  const json = (text: string, what: string, kind: "array" | "object") => {
    let v: unknown;
    try {
      v = JSON.parse(text.trim() || (kind === "array" ? "[]" : "{}"));
    } catch {
      throw new Error(`${what}: not valid JSON`);
    }
    if (
      kind === "array" ? !Array.isArray(v) : typeof v !== "object" || v === null || Array.isArray(v)
    )
      throw new Error(`${what}: must be a JSON ${kind}`);
    return v;
  };
  const num = (text: string) => (text.trim() === "" ? null : Number(text));
  let schedule: Record<string, unknown>;
  switch (d.kind) {
    case "interval":
      schedule = { interval: { every: Number(d.every), period: d.period } };
      break;
    case "crontab": {
      if (!zones.includes(d.timezone)) throw new Error(`Time zone: unknown zone "${d.timezone}"`);
      const [minute, hour, dayOfWeek, dayOfMonth, monthOfYear] = d.cron;
      schedule = {
        crontab: { minute, hour, dayOfWeek, dayOfMonth, monthOfYear, timezone: d.timezone },
      };
      break;
    }
    case "solar":
      schedule = {
        solar: {
          event: d.solarEvent,
          latitude: Number(d.latitude),
          longitude: Number(d.longitude),
        },
      };
      break;
    case "clocked":
      if (!d.clocked) throw new Error("Time: required");
      if (!zones.includes(d.clockedZone))
        throw new Error(`Time zone: unknown zone "${d.clockedZone}"`);
      schedule = {
        clocked: { clockedTime: wallTimeToDate(d.clocked, d.clockedZone).toISOString() },
      };
      break;
  }
  const when = (v: string) => (v ? new Date(v).toISOString() : null);
  return {
    name: d.name.trim(),
    task: d.task.trim(),
    description: d.description,
    schedule,
    args: json(d.args, "Arguments", "array") as unknown[],
    kwargs: json(d.kwargs, "Keyword arguments", "object") as Record<string, unknown>,
    queue: d.queue.trim() || null,
    priority: num(d.priority),
    expireSeconds: num(d.expireSeconds),
    startTime: when(d.startTime),
    expires: when(d.expires),
    oneOff: d.oneOff,
    enabled: d.enabled,
    missedRunPolicy: d.missedRunPolicy,
    maxMissedRuns: Number(d.maxMissedRuns || 10),
  };
}

export function ScheduleEditPage() {
  const { id } = useParams();
  const [{ data, fetching }] = useQuery({
    query: PeriodicTaskQuery,
    variables: { id: id ?? "" },
    pause: !id,
    requestPolicy: "network-only",
  });
  if (id && !data) return fetching ? <Loading /> : <p>No such schedule.</p>;
  if (id && !data?.periodicTask) return <p>No such schedule.</p>;
  return <ScheduleForm key={id ?? "new"} existing={data?.periodicTask ?? null} />;
}

function ScheduleForm({ existing }: { existing: PeriodicTask | null }) {
  const isAdmin = useCan("admin");
  const navigate = useNavigate();
  const [draft, setDraft] = useState<Draft>(() => draftOf(existing));
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const zones = useMemo(() => timeZones(), []);
  const [{ data: registered }] = useQuery({ query: RegisteredTasksQuery });
  const [, create] = useMutation(CreatePeriodicTask);
  const [, update] = useMutation(UpdatePeriodicTask);
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) =>
    setDraft((d) => ({ ...d, [key]: value }));

  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(null);
    let input: PeriodicTaskInput;
    try {
      input = inputOf(draft, zones);
    } catch (e) {
      setProblem({ title: (e as Error).message, code: "INVALID_INPUT" });
      return;
    }
    setBusy(true);
    const r = existing
      ? outcome<PeriodicTask>(await update({ id: existing.id, input }), "updatePeriodicTask")
      : outcome<PeriodicTask>(await create({ input }), "createPeriodicTask");
    setBusy(false);
    if (r.problem) setProblem(r.problem);
    else navigate(`/schedules/${r.ok.id}`);
  };

  const field = (
    key: keyof Draft,
    label: string,
    props: React.InputHTMLAttributes<HTMLInputElement> = {},
  ) => (
    <label>
      {label}
      <input
        name={key}
        value={draft[key] as string}
        onChange={(e) => set(key, e.target.value as never)}
        {...props}
      />
    </label>
  );

  return (
    <section>
      <h1>{existing ? `Edit ${existing.name}` : "New schedule"}</h1>
      {!isAdmin && <p className="notice">Editing schedules needs the admin role.</p>}
      <form className="stack schedule-form" onSubmit={save}>
        <div className="grid-fields">
          {field("name", "Name", { required: true, placeholder: "nightly report" })}
          {field("task", "Task", {
            required: true,
            list: "schedule-task-names",
            placeholder: "tasks.add",
          })}
          {field("description", "Description")}
        </div>
        <datalist id="schedule-task-names">
          {registered?.registeredTasks.map((t) => (
            <option key={t.name} value={t.name} />
          ))}
        </datalist>
        <fieldset>
          <legend>Schedule</legend>
          <div className="chips" role="radiogroup" aria-label="Schedule type">
            {(["interval", "crontab", "solar", "clocked"] as Kind[]).map((k) => (
              <label key={k} className={`chip${draft.kind === k ? " on" : ""}`}>
                <input
                  type="radio"
                  name="kind"
                  value={k}
                  checked={draft.kind === k}
                  onChange={() => set("kind", k)}
                />
                {k === "interval"
                  ? "Interval"
                  : k === "crontab"
                    ? "Crontab"
                    : k === "solar"
                      ? "Solar"
                      : "Once (clocked)"}
              </label>
            ))}
          </div>
          {draft.kind === "interval" && (
            <div className="row wrap">
              <label>
                Every
                <input
                  name="every"
                  type="number"
                  min={1}
                  value={draft.every}
                  onChange={(e) => set("every", e.target.value)}
                />
              </label>
              <label>
                Period
                <select
                  name="period"
                  value={draft.period}
                  onChange={(e) => set("period", e.target.value as IntervalPeriod)}
                >
                  {PERIODS.map((p) => (
                    <option key={p} value={p}>
                      {p.toLowerCase()}
                    </option>
                  ))}
                </select>
              </label>
            </div>
          )}
          {draft.kind === "crontab" && (
            <>
              <div className="chips">
                {CRON_PRESETS.map(([label, cron]) => (
                  <button
                    key={label}
                    type="button"
                    className="chip"
                    onClick={() => set("cron", cron)}
                  >
                    {label}
                  </button>
                ))}
              </div>
              <div className="grid-fields cron">
                {(["minute", "hour", "day of week", "day of month", "month"] as const).map(
                  (label, i) => (
                    <label key={label}>
                      {label}
                      <input
                        name={`cron-${i}`}
                        value={draft.cron[i]}
                        onChange={(e) => {
                          const cron = [...draft.cron] as Draft["cron"];
                          cron[i] = e.target.value;
                          set("cron", cron);
                        }}
                      />
                    </label>
                  ),
                )}
              </div>
              <ZoneField
                value={draft.timezone}
                zones={zones}
                onChange={(z) => set("timezone", z)}
              />
              <p className="muted small">
                Celery's crontab: day of week 0–6 with 0 = Sunday (or sun–sat); day of week, day of
                month and month must all match.
              </p>
            </>
          )}
          {draft.kind === "solar" && (
            <div className="grid-fields">
              <label>
                Event
                <select
                  name="solarEvent"
                  value={draft.solarEvent}
                  onChange={(e) => set("solarEvent", e.target.value as SolarEvent)}
                >
                  {SOLAR.map((s) => (
                    <option key={s} value={s}>
                      {s.toLowerCase().replace("_", " ")}
                    </option>
                  ))}
                </select>
              </label>
              {field("latitude", "Latitude (−90 to 90)", {
                type: "number",
                step: "any",
                required: true,
              })}
              {field("longitude", "Longitude (−180 to 180)", {
                type: "number",
                step: "any",
                required: true,
              })}
            </div>
          )}
          {draft.kind === "clocked" && (
            <div className="grid-fields">
              {field("clocked", "At", { type: "datetime-local", required: true })}
              <ZoneField
                value={draft.clockedZone}
                zones={zones}
                onChange={(z) => set("clockedZone", z)}
              />
            </div>
          )}
        </fieldset>
        <fieldset>
          <legend>Arguments</legend>
          <label>
            Positional (a JSON array)
            <textarea
              name="args"
              className="code"
              rows={2}
              value={draft.args}
              onChange={(e) => set("args", e.target.value)}
            />
          </label>
          <label>
            Keyword (a JSON object)
            <textarea
              name="kwargs"
              className="code"
              rows={2}
              value={draft.kwargs}
              onChange={(e) => set("kwargs", e.target.value)}
            />
          </label>
        </fieldset>
        <details>
          <summary>Options</summary>
          <div className="grid-fields">
            {field("queue", "Queue", { placeholder: "celery" })}
            {field("priority", "Priority", { type: "number", min: 0, max: 255 })}
            {field("expireSeconds", "Messages expire after (s)", { type: "number", min: 1 })}
            {field("startTime", "Not before", { type: "datetime-local" })}
            {field("expires", "Stop after", { type: "datetime-local" })}
            <label>
              Missed runs
              <select
                name="missedRunPolicy"
                value={draft.missedRunPolicy}
                onChange={(e) => set("missedRunPolicy", e.target.value as MissedRunPolicy)}
              >
                {POLICIES.map(([v, label]) => (
                  <option key={v} value={v}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
            {draft.missedRunPolicy === "RUN_ALL" &&
              field("maxMissedRuns", "At most (runs)", { type: "number", min: 1, max: 1000 })}
          </div>
          <label className="row">
            <input
              type="checkbox"
              checked={draft.oneOff}
              onChange={(e) => set("oneOff", e.target.checked)}
            />
            One-off: disable after the first run
          </label>
        </details>
        <label className="row">
          <input
            type="checkbox"
            name="enabled"
            checked={draft.enabled}
            onChange={(e) => set("enabled", e.target.checked)}
          />
          Enabled
        </label>
        {problem && <ProblemBox problem={problem} onClose={() => setProblem(null)} />}
        <div className="row">
          <button type="submit" className="primary" disabled={busy || !isAdmin}>
            {existing ? "Save" : "Create"}
          </button>
          <Link to={existing ? `/schedules/${existing.id}` : "/schedules"}>Cancel</Link>
        </div>
      </form>
    </section>
  );
}

function ZoneField({
  value,
  zones,
  onChange,
}: {
  value: string;
  zones: string[];
  onChange: (zone: string) => void;
}) {
  const known = zones.includes(value);
  return (
    <label>
      Time zone
      <input
        name="timezone"
        list="time-zones"
        value={value}
        aria-invalid={!known}
        onChange={(e) => onChange(e.target.value)}
      />
      <datalist id="time-zones">
        {zones.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      {!known && <span className="bad small">unknown time zone</span>}
    </label>
  );
}
