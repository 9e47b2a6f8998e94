/**
 * Queues: how many messages wait in each and who consumes it; purge (after confirming). Depths
 * are not evented by brokers, so this page asks again every few seconds while it is open.
 */
import { useEffect } from "react";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { ConfirmButton, Loading, ProblemBox, useToast } from "../components/ui.js";
import { PurgeQueue, QueuesQuery } from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, problemOfTransport } from "../lib/errors.js";

export function QueuesPage() {
  const canOperate = useCan("operator");
  const toast = useToast();
  const [{ data, error, fetching }, refetch] = useQuery({
    query: QueuesQuery,
    requestPolicy: "network-only",
  });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 5000);
    return () => clearInterval(t);
  }, [refetch]);
  const [, purge] = useMutation(PurgeQueue);

  return (
    <section>
      <div className="row spread">
        <h1>Queues</h1>
        <button type="button" onClick={() => refetch({ requestPolicy: "network-only" })}>
          Refresh
        </button>
      </div>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {!data && fetching && <Loading />}
      {data && data.queues.length === 0 && <p className="muted">No queue known yet.</p>}
      {data && data.queues.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Queue</th>
                <th className="num">Waiting</th>
                <th className="num">Consumers</th>
                <th className="wide">Workers</th>
                {canOperate && <th />}
              </tr>
            </thead>
            <tbody>
              {data.queues.map((q) => (
                <tr key={q.name} data-queue={q.name}>
                  <td>
                    <Link to={`/tasks?queue=${encodeURIComponent(q.name)}`}>{q.name}</Link>
                  </td>
                  <td className="num">{q.messages ?? "?"}</td>
                  <td className="num">{q.consumers ?? "?"}</td>
                  <td className="wide">
                    {q.workers.join(", ") || <span className="muted">none</span>}
                  </td>
                  {canOperate && (
                    <td className="num">
                      <ConfirmButton
                        label="Purge"
                        title={`Purge ${q.name}?`}
                        body={
                          <p>
                            Every waiting message of <code>{q.name}</code>
                            {q.messages !== null ? ` (${q.messages})` : ""} is deleted, for good.
                            Running tasks are not affected.
                          </p>
                        }
                        confirmLabel="Purge"
                        danger
                        onConfirm={async () => {
                          const r = outcome<{ data: number }>(
                            await purge({ name: q.name }),
                            "purgeQueue",
                          );
                          if (r.problem) toast({ kind: "error", ...r.problem });
                          else {
                            toast({
                              kind: "ok",
                              title: `Purged ${r.ok.data} message(s) from ${q.name}`,
                            });
                            refetch({ requestPolicy: "network-only" });
                          }
                        }}
                      />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
