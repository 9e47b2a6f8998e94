/**
 * Workers: online or offline, load, heartbeats (live, from worker events), what each runs; and
 * the remote controls: shut down, grow or shrink the pool, consume or stop consuming a queue,
 * change a task's rate limit.
 */
import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router";
import { useClient, useMutation, useQuery } from "urql";
import { ConfirmButton, Loading, ProblemBox, Replies, useNow, useToast } from "../components/ui.js";
import {
  AddConsumer,
  CancelConsumer,
  GrowPool,
  RegisteredTasksQuery,
  SetRateLimit,
  ShrinkPool,
  ShutdownWorker,
  type Worker,
  WorkerActiveQuery,
  WorkerEvents,
  type WorkerReply,
  WorkersQuery,
} from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, problemOfTransport } from "../lib/errors.js";
import { formatDateTime, relative } from "../lib/format.js";
import { useEach } from "../lib/live.js";

export function WorkersPage() {
  const [{ data, error, fetching }] = useQuery({
    query: WorkersQuery,
    requestPolicy: "network-only",
  });
  const [workers, setWorkers] = useState<Map<string, Worker>>(new Map());
  const [beats, setBeats] = useState<Map<string, number>>(new Map());
  const [showOffline, setShowOffline] = useState(true);
  useEffect(() => {
    if (data) setWorkers(new Map(data.workers.map((w) => [w.hostname, w])));
  }, [data]);
  useEach(WorkerEvents, {}, ({ workerEvents: e }) => {
    setWorkers((all) => new Map(all).set(e.worker.hostname, e.worker));
    setBeats((all) => new Map(all).set(e.worker.hostname, (all.get(e.worker.hostname) ?? 0) + 1));
  });
  const list = useMemo(
    () =>
      [...workers.values()]
        .filter((w) => showOffline || w.online)
        .sort(
          (a, b) => Number(b.online) - Number(a.online) || a.hostname.localeCompare(b.hostname),
        ),
    [workers, showOffline],
  );
  const online = [...workers.values()].filter((w) => w.online).length;

  return (
    <section>
      <div className="row spread wrap">
        <h1>
          Workers{" "}
          <span className="muted small">
            {online} online · {workers.size - online} offline
          </span>
        </h1>
        <label className="row">
          <input
            type="checkbox"
            checked={showOffline}
            onChange={(e) => setShowOffline(e.target.checked)}
          />
          show offline
        </label>
      </div>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {fetching && workers.size === 0 && <Loading />}
      {!fetching && workers.size === 0 && (
        <p className="muted">
          No worker has reported yet. Start one with <code>celeriac worker --app tasks.ts -E</code>{" "}
          (or a Celery worker with <code>-E</code>).
        </p>
      )}
      <datalist id="worker-task-names">
        <TaskNameOptions />
      </datalist>
      <div className="cards">
        {list.map((w) => (
          <WorkerCard key={w.hostname} worker={w} beat={beats.get(w.hostname) ?? 0} />
        ))}
      </div>
    </section>
  );
}

function TaskNameOptions() {
  const [{ data }] = useQuery({ query: RegisteredTasksQuery });
  return (
    <>
      {data?.registeredTasks.map((t) => (
        <option key={t.name} value={t.name} />
      ))}
    </>
  );
}

function useControl() {
  const toast = useToast();
  return <T extends { data: WorkerReply[] }>(
    result: Parameters<typeof outcome>[0],
    field: string,
    title: string,
  ) => {
    const r = outcome<T>(result, field);
    if (r.problem) toast({ kind: "error", ...r.problem });
    else {
      const failed = r.ok.data.filter((x) => !x.ok);
      if (failed.length || r.ok.data.length === 0)
        toast({
          kind: "error",
          title: `${title}: ${r.ok.data.length === 0 ? "no worker answered" : "refused"}`,
          code: "WORKER_REPLY",
          details: failed.map((f) => `${f.hostname}: ${f.message ?? "error"}`),
        });
      else toast({ kind: "ok", title, body: <Replies replies={r.ok.data} /> });
    }
    return r;
  };
}

function WorkerCard({ worker: w, beat }: { worker: Worker; beat: number }) {
  const canOperate = useCan("operator");
  const now = useNow(1000);
  const control = useControl();
  const [, shutdown] = useMutation(ShutdownWorker);
  const [, grow] = useMutation(GrowPool);
  const [, shrink] = useMutation(ShrinkPool);
  const [, addConsumer] = useMutation(AddConsumer);
  const [, cancelConsumer] = useMutation(CancelConsumer);
  const [, setRateLimit] = useMutation(SetRateLimit);
  const [queue, setQueue] = useState("");
  const [rateTask, setRateTask] = useState("");
  const [rate, setRate] = useState("");
  const destination = [w.hostname];
  const load = w.concurrency ? Math.min(1, w.active / w.concurrency) : 0;

  return (
    <article className={`card worker ${w.online ? "online" : "offline"}`} data-worker={w.hostname}>
      <header className="row spread">
        <h2>
          <span className={`dot ${w.online ? "on" : "off"}`} key={beat} aria-hidden /> {w.hostname}
        </h2>
        <span className={`badge ${w.online ? "ok" : "muted"}`} data-testid="worker-status">
          {w.online ? "online" : "offline"}
        </span>
      </header>
      <p className="muted small">
        {w.software ?? "unknown software"}
        {w.system ? ` · ${w.system}` : ""}
        {w.pid ? ` · pid ${w.pid}` : ""}
      </p>
      <div className="meter" title={`${w.active} of ${w.concurrency ?? "?"} slots busy`}>
        <div style={{ width: `${Math.round(load * 100)}%` }} />
      </div>
      <dl className="facts compact">
        <div>
          <dt>Active</dt>
          <dd>
            {w.active} / {w.concurrency ?? "?"}
          </dd>
        </div>
        <div>
          <dt>Processed</dt>
          <dd>{w.processed.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Load</dt>
          <dd>{w.loadavg.map((l) => l.toFixed(2)).join(" ") || "—"}</dd>
        </div>
        <div>
          <dt>Heartbeat</dt>
          <dd title={formatDateTime(w.lastHeartbeat)}>
            {relative(w.lastHeartbeat, now)} (every {w.heartbeatInterval} s)
          </dd>
        </div>
      </dl>
      <div className="queues">
        <span className="muted small">Queues</span>{" "}
        {w.queues.map((q) => (
          <span key={q} className="chip">
            {q}
            {canOperate && w.online && (
              <button
                type="button"
                className="link"
                aria-label={`Stop consuming ${q}`}
                title={`Stop consuming ${q}`}
                onClick={async () =>
                  control(
                    await cancelConsumer({ queue: q, destination }),
                    "cancelConsumer",
                    `Stopped consuming ${q}`,
                  )
                }
              >
                ×
              </button>
            )}
          </span>
        ))}
      </div>
      {w.online && <ActiveTasks hostname={w.hostname} />}
      {canOperate && w.online && (
        <div className="controls">
          <form
            className="row"
            onSubmit={async (e) => {
              e.preventDefault();
              if (!queue.trim()) return;
              const r = control(
                await addConsumer({ queue: queue.trim(), destination }),
                "addConsumer",
                `Consuming ${queue.trim()}`,
              );
              if (!r.problem) setQueue("");
            }}
          >
            <input
              aria-label="Queue to consume"
              placeholder="queue"
              value={queue}
              onChange={(e) => setQueue(e.target.value)}
            />
            <button type="submit">Add queue</button>
          </form>
          <form
            className="row"
            onSubmit={async (e) => {
              e.preventDefault();
              if (!rateTask.trim()) return;
              control(
                await setRateLimit({
                  taskName: rateTask.trim(),
                  rateLimit: rate.trim() || null,
                  destination,
                }),
                "setRateLimit",
                rate.trim()
                  ? `Rate limit of ${rateTask.trim()}: ${rate.trim()}`
                  : `Rate limit of ${rateTask.trim()} removed`,
              );
            }}
          >
            <input
              aria-label="Task name"
              placeholder="task name"
              list="worker-task-names"
              value={rateTask}
              onChange={(e) => setRateTask(e.target.value)}
            />
            <input
              aria-label="Rate limit"
              placeholder="10/s (empty: none)"
              size={10}
              value={rate}
              onChange={(e) => setRate(e.target.value)}
            />
            <button type="submit">Set rate limit</button>
          </form>
          <div className="row wrap">
            <span className="muted small">Pool</span>
            <button
              type="button"
              aria-label="Shrink the pool"
              onClick={async () =>
                control(
                  await shrink({ hostname: w.hostname, n: 1 }),
                  "shrinkPool",
                  "Pool shrinks by 1",
                )
              }
            >
              −1
            </button>
            <button
              type="button"
              aria-label="Grow the pool"
              onClick={async () =>
                control(await grow({ hostname: w.hostname, n: 1 }), "growPool", "Pool grows by 1")
              }
            >
              +1
            </button>
            <span className="spacer" />
            <ConfirmButton
              label="Shut down"
              title={`Shut down ${w.hostname}?`}
              body="Warm shutdown: it stops fetching, finishes its running tasks, then exits."
              confirmLabel="Shut down"
              danger
              onConfirm={async () => {
                control(
                  await shutdown({ hostname: w.hostname }),
                  "shutdownWorker",
                  `${w.hostname} is shutting down`,
                );
              }}
            />
          </div>
        </div>
      )}
    </article>
  );
}

interface ActiveTask {
  id?: string;
  name?: string;
  args?: unknown;
  time_start?: number | null;
}

function ActiveTasks({ hostname }: { hostname: string }) {
  const client = useClient();
  const [open, setOpen] = useState(false);
  const [tasks, setTasks] = useState<ActiveTask[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const load = async () => {
    const r = await client
      .query(WorkerActiveQuery, { hostname }, { requestPolicy: "network-only" })
      .toPromise();
    if (r.error) setProblem(problemOfTransport(r.error).title);
    else setTasks((r.data?.worker?.activeTasks as ActiveTask[] | null) ?? []);
  };
  return (
    <details
      className="active-tasks"
      open={open}
      onToggle={(e) => {
        const isOpen = (e.target as HTMLDetailsElement).open;
        setOpen(isOpen);
        if (isOpen) void load();
      }}
    >
      <summary>Running now</summary>
      {problem && <p className="problem">{problem}</p>}
      {tasks === null ? (
        <Loading what="Asking the worker" />
      ) : tasks.length === 0 ? (
        <p className="muted small">Nothing.</p>
      ) : (
        <ul className="links">
          {tasks.map((t) => (
            <li key={t.id}>
              <Link to={`/tasks/${t.id}`}>{t.name}</Link>{" "}
              <code className="muted small">{JSON.stringify(t.args)}</code>
            </li>
          ))}
        </ul>
      )}
      {tasks !== null && (
        <button type="button" className="link small" onClick={() => void load()}>
          refresh
        </button>
      )}
    </details>
  );
}
