/**
 * Tasks: the history as a live table. The page is a query (filters, sort and cursor in the URL);
 * task events arrive in batches over a subscription and update the rows in place, and on the
 * first page new tasks that match the filters appear at the top. No polling.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { ConfirmButton, Loading, ProblemBox, StateBadge, useToast } from "../components/ui.js";
import {
  RetryTasks,
  RevokeTasks,
  TaskEventBatches,
  type TaskFilter,
  TaskNamesQuery,
  type TaskRow,
  TasksQuery,
} from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, problemOfTransport } from "../lib/errors.js";
import { argsLine, formatTime, seconds, shortId } from "../lib/format.js";
import { useEach } from "../lib/live.js";

export const STATES = [
  "PENDING",
  "RECEIVED",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "RETRY",
  "REVOKED",
  "REJECTED",
];

const SORTS: Array<[string, string]> = [
  ["CREATED_AT", "first seen"],
  ["UPDATED_AT", "last change"],
  ["NAME", "name"],
  ["RUNTIME", "runtime"],
];

const list = (v: string | null) => (v ? v.split(",").filter(Boolean) : []);

/** The filter the URL describes. */
function filterOf(params: URLSearchParams): TaskFilter {
  const filter: TaskFilter = {};
  const states = list(params.get("state"));
  if (states.length) filter.states = states;
  const names = list(params.get("name"));
  if (names.length) filter.names = names;
  const workers = list(params.get("worker"));
  if (workers.length) filter.workers = workers;
  const queues = list(params.get("queue"));
  if (queues.length) filter.queues = queues;
  const search = params.get("q");
  if (search) filter.search = search;
  const from = params.get("from");
  if (from) filter.from = new Date(from).toISOString();
  const group = params.get("group");
  if (group) filter.groupId = group;
  const root = params.get("root");
  if (root) filter.rootId = root;
  const to = params.get("to");
  if (to) filter.to = new Date(to).toISOString();
  return filter;
}

function matches(task: TaskRow, f: TaskFilter): boolean {
  const inList = (values: string[] | undefined, v: string | null) =>
    !values?.length || (v !== null && values.includes(v));
  return (
    inList(f.states, task.state) &&
    inList(f.names, task.name) &&
    inList(f.workers, task.worker) &&
    inList(f.queues, task.queue) &&
    (!f.from || task.createdAt >= f.from) &&
    (!f.to || task.createdAt < f.to) &&
    !f.search &&
    !f.groupId &&
    !f.rootId
  );
}

export function TasksPage() {
  const [params, setParams] = useSearchParams();
  const canOperate = useCan("operator");
  const toast = useToast();
  const filter = useMemo(() => filterOf(params), [params]);
  const filterKey = JSON.stringify(filter);
  const size = Number(params.get("size") ?? 50);
  const after = params.get("after");
  const before = params.get("before");
  const sortField = params.get("sort") ?? "CREATED_AT";
  const direction = (params.get("dir") ?? "DESC") as "ASC" | "DESC";
  const atHead = !after && !before && sortField === "CREATED_AT" && direction === "DESC";

  const variables = useMemo(
    () => ({
      filter,
      first: before ? null : size,
      last: before ? size : null,
      after,
      before,
      sort: { field: sortField, direction },
    }),
    [filter, size, after, before, sortField, direction],
  );
  const [{ data, error, fetching }, refetch] = useQuery({
    query: TasksQuery,
    variables,
    requestPolicy: "network-only",
  });

  // Rows shown: the page, then kept current by the event stream.
  const [rows, setRows] = useState<TaskRow[]>([]);
  const [total, setTotal] = useState(0);
  // Counted when few; beyond, the server's estimate (counting millions of tasks takes seconds).
  const [exact, setExact] = useState(true);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [missed, setMissed] = useState(0);
  const rowsRef = useRef<TaskRow[]>([]);
  useEffect(() => {
    if (!data) return;
    rowsRef.current = data.tasks.edges.map((e) => e.node);
    setRows(rowsRef.current);
    setTotal(data.tasks.totalCountEstimate.value);
    setExact(data.tasks.totalCountEstimate.exact);
    setMissed(0);
  }, [data]);

  const live = useRef({ filter, atHead, size });
  live.current = { filter, atHead, size };
  const names = filter.names?.length ? { names: filter.names } : null;
  useEach(TaskEventBatches, { filter: names }, (batch) => {
    const events = batch.taskEventBatches.events;
    if (!events.length) return;
    const latest = new Map<string, TaskRow>();
    for (const e of events) latest.set(e.task.id, e.task);
    const { filter: f, atHead: head, size: n } = live.current;
    const current = rowsRef.current;
    const known = new Set(current.map((r) => r.id));
    const updated = current.map((r) => latest.get(r.id) ?? r);
    const unknown = [...latest.values()].filter((t) => !known.has(t.id));
    const added = head
      ? unknown.filter((t) => matches(t, f)).sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      : [];
    const next = added.length ? [...added, ...updated].slice(0, Math.max(n, 200)) : updated;
    rowsRef.current = next;
    setRows(next);
    if (added.length) {
      setTotal((t) => t + added.length);
      setFresh(new Set(added.map((t) => t.id)));
    }
    if (head && f.search && unknown.length) setMissed((m) => m + unknown.length);
  });

  // Selection for bulk actions.
  const [selected, setSelected] = useState<Set<string>>(new Set());
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter or page clears the selection.
  useEffect(() => setSelected(new Set()), [filterKey, after, before]);
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const allSelected = rows.length > 0 && rows.every((r) => selected.has(r.id));

  const [, retryTasks] = useMutation(RetryTasks);
  const [, revokeTasks] = useMutation(RevokeTasks);
  const bulkRetry = async (f: TaskFilter, what: string) => {
    const r = outcome<{ data: { sent: Array<{ id: string }>; skipped: string[] } }>(
      await retryTasks({ filter: f }),
      "retryTasks",
    );
    if (r.problem) toast({ kind: "error", ...r.problem });
    else {
      const { sent, skipped } = r.ok.data;
      toast({
        kind: "ok",
        title: `Re-ran ${sent.length} task${sent.length === 1 ? "" : "s"} (${what})`,
        body: skipped.length
          ? `${skipped.length} skipped: their arguments are not known`
          : undefined,
      });
      setSelected(new Set());
    }
  };
  const bulkRevoke = async (f: TaskFilter, terminate: boolean, what: string) => {
    const r = outcome<{ data: { revoked: string[] } }>(
      await revokeTasks({ filter: f, terminate }),
      "revokeTasks",
    );
    if (r.problem) toast({ kind: "error", ...r.problem });
    else {
      toast({ kind: "ok", title: `Revoked ${r.ok.data.revoked.length} task(s) (${what})` });
      setSelected(new Set());
    }
  };

  const set = (changes: Record<string, string | null>, keepPage = false) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === "") next.delete(k);
      else next.set(k, v);
    }
    if (!keepPage) {
      next.delete("after");
      next.delete("before");
    }
    setParams(next);
  };

  const filtered = Object.keys(filter).length > 0;
  const pageInfo = data?.tasks.pageInfo;

  return (
    <section>
      <div className="row spread">
        <h1>Tasks</h1>
        <span className="muted" data-testid="task-count">
          {exact ? "" : "about "}
          {total.toLocaleString()} task{total === 1 ? "" : "s"}
          {filtered ? " match" : ""}
        </span>
      </div>
      <Filters params={params} set={set} />
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {missed > 0 && (
        <p className="notice">
          New tasks arrived; the text search is applied by the server:{" "}
          <button type="button" className="link" onClick={() => refetch()}>
            refresh
          </button>
        </p>
      )}
      {canOperate && (
        <div className="bulk row wrap">
          {selected.size > 0 ? (
            <>
              <strong>{selected.size} selected</strong>
              <ConfirmButton
                label="Re-run selected"
                title={`Re-run ${selected.size} task(s)?`}
                body="Each runs again with the same arguments, as a new task linked to it."
                confirmLabel="Re-run"
                onConfirm={() => bulkRetry({ ids: [...selected] }, "selection")}
              />
              <RevokeButton
                count={selected.size}
                onRevoke={(terminate) => bulkRevoke({ ids: [...selected] }, terminate, "selection")}
              />
              <button type="button" className="link" onClick={() => setSelected(new Set())}>
                clear
              </button>
            </>
          ) : filtered ? (
            <>
              <span className="muted">Every task matching the filters:</span>
              <ConfirmButton
                label={`Re-run all ${exact ? "" : "~"}${total.toLocaleString()}`}
                title={`Re-run every matching task (${exact ? "" : "about "}${total.toLocaleString()})?`}
                body="At most 10,000 at once. Each runs again with the same arguments."
                confirmLabel="Re-run all"
                disabled={total === 0}
                onConfirm={() => bulkRetry(filter, "filter")}
              />
              <RevokeButton
                count={total}
                all
                onRevoke={(terminate) => bulkRevoke(filter, terminate, "filter")}
              />
            </>
          ) : (
            <span className="muted small">
              Select tasks, or filter them, to re-run or revoke them together.
            </span>
          )}
        </div>
      )}
      <div className="table-wrap">
        <table className="tasks">
          <thead>
            <tr>
              {canOperate && (
                <th className="check">
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={allSelected}
                    onChange={() =>
                      setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))
                    }
                  />
                </th>
              )}
              <th>State</th>
              <th>Name</th>
              <th className="wide">Arguments</th>
              <th className="wide">Worker</th>
              <th>First seen</th>
              <th className="num">Runtime</th>
              <th className="wide">Id</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((t) => (
              <tr
                key={t.id}
                className={fresh.has(t.id) ? "fresh" : undefined}
                data-task-id={t.id}
                data-state={t.state}
              >
                {canOperate && (
                  <td className="check">
                    <input
                      type="checkbox"
                      aria-label={`Select ${t.id}`}
                      checked={selected.has(t.id)}
                      onChange={() => toggle(t.id)}
                    />
                  </td>
                )}
                <td>
                  <StateBadge state={t.state} />
                  {t.retries > 0 && <span className="muted small"> ×{t.retries + 1}</span>}
                </td>
                <td>
                  <Link to={`/tasks/${t.id}`}>{t.name ?? "(unknown)"}</Link>
                </td>
                <td className="wide args" title={argsLine(t)}>
                  {argsLine(t)}
                </td>
                <td className="wide">{t.worker ?? ""}</td>
                <td>{formatTime(t.createdAt)}</td>
                <td className="num">{seconds(t.runtime)}</td>
                <td className="wide">
                  <Link to={`/tasks/${t.id}`}>
                    <code>{shortId(t.id)}</code>
                  </Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {fetching && rows.length === 0 && <Loading />}
        {!fetching && rows.length === 0 && <p className="muted">No task matches.</p>}
      </div>
      <div className="row spread pager">
        <div className="row">
          <button
            type="button"
            disabled={atHead && !after && !before}
            onClick={() => set({ after: null, before: null })}
          >
            Latest
          </button>
          <button
            type="button"
            disabled={!(before ? pageInfo?.hasPreviousPage : after)}
            onClick={() =>
              pageInfo?.startCursor &&
              set({ before: rows[0] ? pageInfo.startCursor : null, after: null }, true)
            }
          >
            ← Newer
          </button>
          <button
            type="button"
            disabled={!(before ? true : pageInfo?.hasNextPage)}
            onClick={() =>
              pageInfo?.endCursor && set({ after: pageInfo.endCursor, before: null }, true)
            }
          >
            Older →
          </button>
        </div>
        <label className="row">
          Per page
          <select value={size} onChange={(e) => set({ size: e.target.value })}>
            {[25, 50, 100, 200].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      </div>
    </section>
  );
}

function RevokeButton({
  count,
  all,
  onRevoke,
}: {
  count: number;
  all?: boolean;
  onRevoke: (terminate: boolean) => Promise<void>;
}) {
  const [terminate, setTerminate] = useState(false);
  return (
    <ConfirmButton
      label={all ? `Revoke all ${count.toLocaleString()}` : "Revoke selected"}
      title={`Revoke ${count.toLocaleString()} task(s)?`}
      danger
      disabled={count === 0}
      confirmLabel="Revoke"
      body={
        <label className="row">
          <input
            type="checkbox"
            checked={terminate}
            onChange={(e) => setTerminate(e.target.checked)}
          />
          Also stop the ones running now (terminate)
        </label>
      }
      onConfirm={() => onRevoke(terminate)}
    />
  );
}

function Filters({
  params,
  set,
}: {
  params: URLSearchParams;
  set: (changes: Record<string, string | null>) => void;
}) {
  const [{ data }] = useQuery({ query: TaskNamesQuery });
  const states = list(params.get("state"));
  const [search, setSearch] = useState(params.get("q") ?? "");
  const q = params.get("q") ?? "";
  useEffect(() => setSearch(q), [q]);
  const toggleState = (s: string) => {
    const next = states.includes(s) ? states.filter((x) => x !== s) : [...states, s];
    set({ state: next.join(",") || null });
  };
  const any = [...params.keys()].some((k) => !["size", "sort", "dir"].includes(k));
  // On a phone the fields start folded: the table matters more there.
  const [wide] = useState(() => window.matchMedia("(min-width: 721px)").matches);
  return (
    <form
      className="filters"
      onSubmit={(e) => {
        e.preventDefault();
        set({ q: search || null });
      }}
    >
      <fieldset className="chips">
        <legend className="sr-only">States</legend>
        {STATES.map((s) => (
          <button
            key={s}
            type="button"
            className={`chip state-${s.toLowerCase()}${states.includes(s) ? " on" : ""}`}
            aria-pressed={states.includes(s)}
            onClick={() => toggleState(s)}
          >
            {s}
          </button>
        ))}
      </fieldset>
      <details className="more-filters" open={wide}>
        <summary>Filters and sort</summary>
        <div className="grid-fields">
          <label>
            Name
            <input
              list="task-names"
              defaultValue={params.get("name") ?? ""}
              key={`name-${params.get("name")}`}
              placeholder="tasks.add"
              onBlur={(e) => set({ name: e.target.value.trim() || null })}
              onKeyDown={(e) => {
                if (e.key === "Enter") {
                  e.preventDefault();
                  set({ name: e.currentTarget.value.trim() || null });
                }
              }}
            />
          </label>
          <label>
            Worker
            <input
              list="worker-names"
              defaultValue={params.get("worker") ?? ""}
              key={`worker-${params.get("worker")}`}
              onBlur={(e) => set({ worker: e.target.value.trim() || null })}
            />
          </label>
          <label>
            Queue
            <input
              list="queue-names"
              defaultValue={params.get("queue") ?? ""}
              key={`queue-${params.get("queue")}`}
              onBlur={(e) => set({ queue: e.target.value.trim() || null })}
            />
          </label>
          <label>
            From
            <input
              type="datetime-local"
              value={params.get("from") ?? ""}
              onChange={(e) => set({ from: e.target.value || null })}
            />
          </label>
          <label>
            To
            <input
              type="datetime-local"
              value={params.get("to") ?? ""}
              onChange={(e) => set({ to: e.target.value || null })}
            />
          </label>
          <label>
            Search
            <input
              type="search"
              name="q"
              placeholder="in args, results, errors"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
              onBlur={() => search !== q && set({ q: search || null })}
            />
          </label>
          <label>
            Sort by
            <span className="row">
              <select
                value={params.get("sort") ?? "CREATED_AT"}
                onChange={(e) => set({ sort: e.target.value })}
              >
                {SORTS.map(([v, label]) => (
                  <option key={v} value={v}>
                    {label}
                  </option>
                ))}
              </select>
              <select
                aria-label="Direction"
                value={params.get("dir") ?? "DESC"}
                onChange={(e) => set({ dir: e.target.value })}
              >
                <option value="DESC">↓</option>
                <option value="ASC">↑</option>
              </select>
            </span>
          </label>
        </div>
      </details>
      {any && (
        <button
          type="button"
          className="link"
          onClick={() =>
            set({
              state: null,
              name: null,
              worker: null,
              queue: null,
              q: null,
              from: null,
              to: null,
              group: null,
              root: null,
            })
          }
        >
          Clear filters
        </button>
      )}
      <datalist id="task-names">
        {data?.registeredTasks.map((t) => (
          <option key={t.name} value={t.name} />
        ))}
      </datalist>
      <datalist id="worker-names">
        {data?.workers.map((w) => (
          <option key={w.hostname} value={w.hostname} />
        ))}
      </datalist>
      <datalist id="queue-names">
        {data?.queues.map((q) => (
          <option key={q.name} value={q.name} />
        ))}
      </datalist>
    </form>
  );
}
