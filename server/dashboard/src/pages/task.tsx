/**
 * One task: its arguments, result or exception with traceback, timeline, logs and relatives,
 * kept live by the taskUpdated and taskLogs subscriptions; re-run, revoke and terminate.
 */
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery } from "urql";
import {
  ConfirmButton,
  Json,
  Loading,
  ProblemBox,
  StateBadge,
  useToast,
} from "../components/ui.js";
import {
  RetryTask,
  RevokeTask,
  type TaskDetail,
  type TaskLog,
  TaskLogs,
  TaskQuery,
  type TaskRef,
  TaskUpdated,
  type WorkerReply,
} from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, problemOfTransport } from "../lib/errors.js";
import { formatDateTime, seconds, shortId } from "../lib/format.js";
import { useEach } from "../lib/live.js";

const READY = new Set(["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]);

export function TaskPage() {
  const { id = "" } = useParams();
  const [{ data, error, fetching }] = useQuery({
    query: TaskQuery,
    variables: { id },
    requestPolicy: "network-only",
  });
  const [task, setTask] = useState<TaskDetail | null>(null);
  const [logs, setLogs] = useState<TaskLog[]>([]);
  useEffect(() => {
    const fetched = data?.task;
    if (fetched) {
      // A change the subscription brought first is newer than the page's answer.
      setTask((seen) =>
        seen && seen.id === fetched.id && seen.updatedAt > fetched.updatedAt ? seen : fetched,
      );
      setLogs(fetched.logs);
    } else setTask(null);
  }, [data]);

  useEach(TaskUpdated, { id }, (d) => setTask(d.taskUpdated));
  useEach(TaskLogs, { taskId: id }, ({ taskLogs: record }) =>
    setLogs((all) => (all.some((l) => l.id === record.id) ? all : [...all, record])),
  );

  if (error) return <ProblemBox problem={problemOfTransport(error)} />;
  if (!task) {
    if (fetching || !data) return <Loading />;
    return (
      <section>
        <h1>Task not found</h1>
        <p>
          No task <code>{id}</code> in the history (yet): it appears once a worker or producer
          reports it. This page updates by itself.
        </p>
      </section>
    );
  }
  return <TaskView task={task} logs={logs} />;
}

function TaskView({ task, logs }: { task: TaskDetail; logs: TaskLog[] }) {
  const canOperate = useCan("operator");
  const navigate = useNavigate();
  const toast = useToast();
  const [, retry] = useMutation(RetryTask);
  const [, revoke] = useMutation(RevokeTask);
  const ready = READY.has(task.state);

  const rerun = async () => {
    const r = outcome<{ id: string }>(await retry({ id: task.id }), "retryTask");
    if (r.problem) toast({ kind: "error", ...r.problem });
    else {
      toast({ kind: "ok", title: `Re-run sent: ${shortId(r.ok.id)}` });
      navigate(`/tasks/${r.ok.id}`);
    }
  };
  const stop = async (terminate: boolean) => {
    const r = outcome<{ data: { revoked: string[]; replies: WorkerReply[] } }>(
      await revoke({ id: task.id, terminate }),
      "revokeTask",
    );
    if (r.problem) toast({ kind: "error", ...r.problem });
    else
      toast({
        kind: "ok",
        title: terminate ? "Revoked and terminated" : "Revoked",
        body: `${r.ok.data.replies.length} worker(s) answered`,
      });
  };
  const runAgainLink = useMemo(() => {
    const p = new URLSearchParams({ name: task.name ?? "" });
    if (task.args !== null && task.args !== undefined) p.set("args", JSON.stringify(task.args));
    if (task.kwargs && Object.keys(task.kwargs as object).length)
      p.set("kwargs", JSON.stringify(task.kwargs));
    if (task.queue) p.set("queue", task.queue);
    return `/run?${p}`;
  }, [task]);

  return (
    <section className="task-page">
      <div className="row spread wrap">
        <h1>
          {task.name ?? "(unknown task)"} <StateBadge state={task.state} />
        </h1>
        {canOperate && (
          <div className="row wrap actions">
            <ConfirmButton
              label="Re-run"
              title="Re-run this task?"
              body="It runs again with the same arguments, as a new task linked to this one."
              confirmLabel="Re-run"
              disabled={task.args === null || task.args === undefined}
              onConfirm={rerun}
            />
            {task.name && <Link to={runAgainLink}>Edit and run…</Link>}
            <ConfirmButton
              label="Revoke"
              title="Revoke this task?"
              body="Workers will not run it; a run in progress goes on."
              confirmLabel="Revoke"
              danger
              disabled={ready}
              onConfirm={() => stop(false)}
            />
            <ConfirmButton
              label="Terminate"
              title="Terminate this task?"
              body="Revoke it, and stop it (SIGTERM) where it runs."
              confirmLabel="Terminate"
              danger
              disabled={ready}
              onConfirm={() => stop(true)}
            />
          </div>
        )}
      </div>
      <p className="muted">
        <code data-testid="task-id">{task.id}</code>
      </p>
      <dl className="facts">
        <Fact label="Worker" value={task.worker} />
        <Fact label="Queue" value={task.queue} />
        <Fact label="Retries" value={String(task.retries)} />
        <Fact label="Runtime" value={task.runtime === null ? null : seconds(task.runtime)} />
        <Fact label="Sent" value={task.sentAt && formatDateTime(task.sentAt)} />
        <Fact label="Received" value={task.receivedAt && formatDateTime(task.receivedAt)} />
        <Fact label="Started" value={task.startedAt && formatDateTime(task.startedAt)} />
        <Fact label="Succeeded" value={task.succeededAt && formatDateTime(task.succeededAt)} />
        <Fact label="Failed" value={task.failedAt && formatDateTime(task.failedAt)} />
        <Fact label="Revoked" value={task.revokedAt && formatDateTime(task.revokedAt)} />
        <Fact label="ETA" value={task.eta && formatDateTime(task.eta)} />
        <Fact label="Expires" value={task.expires && formatDateTime(task.expires)} />
      </dl>
      <Relatives task={task} />
      <div className="two">
        <div>
          <h2>Arguments</h2>
          {task.args !== null && task.args !== undefined ? (
            <Json value={task.args} />
          ) : (
            <pre className="json">{task.argsRepr ?? "unknown"}</pre>
          )}
        </div>
        <div>
          <h2>Keyword arguments</h2>
          {task.kwargs !== null && task.kwargs !== undefined ? (
            <Json value={task.kwargs} />
          ) : (
            <pre className="json">{task.kwargsRepr ?? "unknown"}</pre>
          )}
        </div>
      </div>
      {task.result !== null && (
        <>
          <h2>Result</h2>
          <pre className="json" data-testid="task-result">
            {task.result}
          </pre>
        </>
      )}
      {task.exception && (
        <>
          <h2>Exception</h2>
          <pre className="exception" data-testid="task-exception">
            {task.exception}
          </pre>
          {task.traceback && (
            <details open>
              <summary>Traceback</summary>
              <pre className="traceback">{task.traceback}</pre>
            </details>
          )}
        </>
      )}
      <h2>Timeline</h2>
      <ol className="timeline">
        {task.timeline.map((e) => (
          <li key={e.id}>
            <time>{formatDateTime(e.timestamp)}</time> <strong>{e.type}</strong>{" "}
            <span className="muted">{e.hostname}</span>
            <EventFields fields={e.fields} />
          </li>
        ))}
        {task.timeline.length === 0 && <li className="muted">No event yet.</li>}
      </ol>
      <h2>Logs</h2>
      {logs.length === 0 ? (
        <p className="muted">
          No log record. Workers ship them with <code>--ship-logs</code>.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="logs">
            <tbody>
              {logs.map((l) => (
                <tr key={l.id} className={`level-${l.level}`}>
                  <td>
                    <time>{formatDateTime(l.timestamp)}</time>
                  </td>
                  <td>{l.level}</td>
                  <td>
                    {l.msg}
                    {l.data !== null && l.data !== undefined && Object.keys(l.data).length > 0 && (
                      <code className="muted small"> {JSON.stringify(l.data)}</code>
                    )}
                  </td>
                  <td className="wide muted">{l.hostname}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Fact({ label, value }: { label: string; value: string | null | undefined }) {
  if (!value) return null;
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function EventFields({ fields }: { fields: Record<string, unknown> }) {
  const shown = Object.entries(fields).filter(
    ([k, v]) =>
      v !== null &&
      v !== undefined &&
      ![
        "uuid",
        "hostname",
        "timestamp",
        "clock",
        "utcoffset",
        "pid",
        "type",
        "local_received",
      ].includes(k),
  );
  if (shown.length === 0) return null;
  return (
    <details>
      <summary className="muted small">fields</summary>
      <Json value={Object.fromEntries(shown)} />
    </details>
  );
}

function TaskLink({ t }: { t: TaskRef }) {
  return (
    <li>
      <StateBadge state={t.state} /> <Link to={`/tasks/${t.id}`}>{t.name ?? t.id}</Link>{" "}
      <code className="muted small">{shortId(t.id)}</code>
    </li>
  );
}

function Relatives({ task }: { task: TaskDetail }) {
  const any =
    task.parent || task.children.length || task.reruns.length || task.rerunOf || task.groupId;
  if (!any) return null;
  return (
    <div className="relatives">
      {task.rerunOf && (
        <p>
          Re-run of <Link to={`/tasks/${task.rerunOf}`}>{shortId(task.rerunOf)}</Link>
        </p>
      )}
      {task.parent && (
        <>
          <h3>Parent</h3>
          <ul className="links">
            <TaskLink t={task.parent} />
          </ul>
        </>
      )}
      {task.children.length > 0 && (
        <>
          <h3>Children ({task.children.length})</h3>
          <ul className="links">
            {task.children.map((c) => (
              <TaskLink key={c.id} t={c} />
            ))}
          </ul>
        </>
      )}
      {task.reruns.length > 0 && (
        <>
          <h3>Re-runs ({task.reruns.length})</h3>
          <ul className="links">
            {task.reruns.map((c) => (
              <TaskLink key={c.id} t={c} />
            ))}
          </ul>
        </>
      )}
      {task.groupId && (
        <p className="muted small">
          Group <Link to={`/tasks?group=${task.groupId}`}>{shortId(task.groupId)}</Link>
          {task.rootId && task.rootId !== task.id && (
            <>
              {" "}
              · workflow root <Link to={`/tasks/${task.rootId}`}>{shortId(task.rootId)}</Link> (
              <Link to={`/tasks?root=${task.rootId}`}>all its tasks</Link>)
            </>
          )}
        </p>
      )}
    </div>
  );
}
