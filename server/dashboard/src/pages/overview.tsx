/**
 * Overview: throughput, failures and runtime percentiles over time, for every task or one task
 * name, and a table per task name kept live by the `stats` subscription.
 */
import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useQuery } from "urql";
import { type Series, TimeChart } from "../components/chart.js";
import { Loading, ProblemBox } from "../components/ui.js";
import { StatsLive, StatsQuery, type TaskStats, WorkersQuery } from "../graphql.js";
import { problemOfTransport } from "../lib/errors.js";
import { seconds } from "../lib/format.js";
import { useEach } from "../lib/live.js";

const WINDOWS: Array<[number, string, number]> = [
  [300, "5 min", 5],
  [900, "15 min", 15],
  [3600, "1 hour", 60],
  [6 * 3600, "6 hours", 300],
  [24 * 3600, "24 hours", 1200],
];

export function OverviewPage() {
  const [params, setParams] = useSearchParams();
  const span = Number(params.get("window") ?? 900);
  const bucket = WINDOWS.find(([w]) => w === span)?.[2] ?? 60;
  const name = params.get("task");
  const [{ data, error, fetching }, refetch] = useQuery({
    query: StatsQuery,
    variables: { window: span, bucket, names: name ? [name] : null },
    requestPolicy: "cache-and-network",
  });
  const [{ data: workers }] = useQuery({ query: WorkersQuery });
  // The series has no subscription: it is asked again each bucket (at most every 10 s).
  useEffect(() => {
    const t = setInterval(
      () => refetch({ requestPolicy: "network-only" }),
      Math.max(10, bucket) * 1000,
    );
    return () => clearInterval(t);
  }, [refetch, bucket]);
  // The live figures, for the window they were asked for.
  const [live, setLive] = useState<{ span: number; stats: TaskStats[] } | null>(null);
  useEach(StatsLive, { window: span }, (d) => setLive({ span, stats: d.stats }));
  const stats = (live?.span === span ? live.stats : null) ?? data?.stats ?? [];

  const series = data?.statsSeries ?? [];
  const times = useMemo(() => series.map((b) => new Date(b.at).getTime() / 1000), [series]);
  const throughput = useMemo<Series[]>(
    () => [
      {
        label: "succeeded/s",
        color: "#4d9a3a",
        values: series.map((b) => b.succeeded / bucket),
        unit: "",
      },
      { label: "failed/s", color: "#d2452f", values: series.map((b) => b.failed / bucket) },
    ],
    [series, bucket],
  );
  const failures = useMemo<Series[]>(
    () => [
      { label: "failures", color: "#d2452f", values: series.map((b) => b.failed), bars: true },
    ],
    [series],
  );
  const runtimes = useMemo<Series[]>(
    () => [
      { label: "p50", color: "#3a6fb0", values: series.map((b) => b.runtimeP50), unit: " s" },
      { label: "p95", color: "#b07a3a", values: series.map((b) => b.runtimeP95), unit: " s" },
    ],
    [series],
  );

  const totals = stats
    .filter((s) => !name || s.name === name)
    .reduce(
      (a, s) => ({
        succeeded: a.succeeded + s.succeeded,
        failed: a.failed + s.failed,
        throughput: a.throughput + s.throughput,
      }),
      { succeeded: 0, failed: 0, throughput: 0 },
    );
  const online = workers?.workers.filter((w) => w.online).length ?? 0;
  const set = (k: string, v: string | null) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next);
  };

  return (
    <section>
      <div className="row spread wrap">
        <h1>Overview</h1>
        <div className="row wrap">
          <label className="row">
            Task
            <select value={name ?? ""} onChange={(e) => set("task", e.target.value || null)}>
              <option value="">every task</option>
              {stats.map((s) => (
                <option key={s.name} value={s.name}>
                  {s.name}
                </option>
              ))}
              {name && !stats.some((s) => s.name === name) && <option value={name}>{name}</option>}
            </select>
          </label>
          <label className="row">
            Last
            <select value={span} onChange={(e) => set("window", e.target.value)}>
              {WINDOWS.map(([w, label]) => (
                <option key={w} value={w}>
                  {label}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      <div className="figures">
        <Figure label="finished / s" value={totals.throughput.toFixed(2)} />
        <Figure label="succeeded" value={totals.succeeded.toLocaleString()} />
        <Figure
          label="failed"
          value={totals.failed.toLocaleString()}
          bad={totals.failed > 0}
          to={`/tasks?state=FAILURE${name ? `&name=${encodeURIComponent(name)}` : ""}`}
        />
        <Figure label="workers online" value={String(online)} to="/workers" />
      </div>
      {!data && fetching ? (
        <Loading />
      ) : (
        <div className="charts">
          <TimeChart
            title="Throughput (tasks finished per second)"
            times={times}
            series={throughput}
          />
          <TimeChart title={`Failures (per ${bucket} s)`} times={times} series={failures} />
          <TimeChart title="Runtime percentiles (seconds)" times={times} series={runtimes} />
        </div>
      )}
      <h2>Per task</h2>
      <div className="table-wrap">
        <table className="stats">
          <thead>
            <tr>
              <th>Task</th>
              <th className="num">Finished/s</th>
              <th className="num">Succeeded</th>
              <th className="num">Failed</th>
              <th className="num wide">Retried</th>
              <th className="num wide">Revoked</th>
              <th className="num">p50</th>
              <th className="num">p95</th>
              <th className="num wide">p99</th>
            </tr>
          </thead>
          <tbody>
            {stats.map((s) => (
              <tr key={s.name} className={s.name === name ? "selected" : undefined}>
                <td>
                  <button type="button" className="link" onClick={() => set("task", s.name)}>
                    {s.name}
                  </button>{" "}
                  <Link
                    className="small"
                    to={`/tasks?name=${encodeURIComponent(s.name)}`}
                    title="Its tasks"
                  >
                    tasks →
                  </Link>
                </td>
                <td className="num">{s.throughput.toFixed(2)}</td>
                <td className="num">{s.succeeded}</td>
                <td className={`num${s.failed ? " bad" : ""}`}>
                  {s.failed ? (
                    <Link to={`/tasks?state=FAILURE&name=${encodeURIComponent(s.name)}`}>
                      {s.failed}
                    </Link>
                  ) : (
                    0
                  )}
                </td>
                <td className="num wide">{s.retried}</td>
                <td className="num wide">{s.revoked}</td>
                <td className="num">{seconds(s.runtimeP50)}</td>
                <td className="num">{seconds(s.runtimeP95)}</td>
                <td className="num wide">{seconds(s.runtimeP99)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {stats.length === 0 && !fetching && (
          <p className="muted">No task finished in this window.</p>
        )}
      </div>
    </section>
  );
}

function Figure({
  label,
  value,
  bad,
  to,
}: {
  label: string;
  value: string;
  bad?: boolean;
  to?: string;
}) {
  const body = (
    <>
      <strong className={bad ? "bad" : undefined}>{value}</strong>
      <span>{label}</span>
    </>
  );
  return to ? (
    <Link className="figure" to={to}>
      {body}
    </Link>
  ) : (
    <div className="figure">{body}</div>
  );
}
