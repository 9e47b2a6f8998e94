/**
 * Locks of unique tasks: who holds which key, since and until when; release one (operator).
 * Locks are not evented, so this page asks again every few seconds while it is open.
 */
import { useEffect } from "react";
import { Link } from "react-router";
import { useMutation, useQuery } from "urql";
import { ConfirmButton, Loading, ProblemBox, useNow, useToast } from "../components/ui.js";
import { type Lock, LocksQuery, ReleaseLock } from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, problemOfTransport } from "../lib/errors.js";
import { formatDateTime, relative } from "../lib/format.js";

export function LocksPage() {
  const canOperate = useCan("operator");
  const toast = useToast();
  const now = useNow(1000);
  const [{ data, error, fetching }, refetch] = useQuery({
    query: LocksQuery,
    requestPolicy: "network-only",
  });
  useEffect(() => {
    const t = setInterval(() => refetch({ requestPolicy: "network-only" }), 3000);
    return () => clearInterval(t);
  }, [refetch]);
  const [, release] = useMutation(ReleaseLock);

  return (
    <section>
      <div className="row spread">
        <h1>Locks</h1>
        <button type="button" onClick={() => refetch({ requestPolicy: "network-only" })}>
          Refresh
        </button>
      </div>
      <p className="muted small">
        Unique tasks hold a lock per key while they run; a lock frees itself when it expires unless
        its holder renews it.
      </p>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {!data && fetching && <Loading />}
      {data && data.locks.length === 0 && <p className="muted">No lock is held.</p>}
      {data && data.locks.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th className="wide">Key</th>
                <th>Holder</th>
                <th>Worker</th>
                <th>Taken</th>
                <th>Expires</th>
                {canOperate && <th />}
              </tr>
            </thead>
            <tbody>
              {data.locks.map((lock: Lock) => (
                <tr key={lock.key} data-lock={lock.key}>
                  <td className="wide">
                    <code>{lock.key}</code>
                  </td>
                  <td>
                    <Link to={`/tasks/${encodeURIComponent(lock.taskId)}`}>{lock.taskName}</Link>
                  </td>
                  <td>{lock.worker}</td>
                  <td title={formatDateTime(lock.acquiredAt)}>{relative(lock.acquiredAt, now)}</td>
                  <td title={formatDateTime(lock.expiresAt)}>{relative(lock.expiresAt, now)}</td>
                  {canOperate && (
                    <td className="num">
                      <ConfirmButton
                        label="Release"
                        title={`Release ${lock.key}?`}
                        body={
                          <p>
                            Another run of this key may start at once. The holder on{" "}
                            <code>{lock.worker}</code> is not stopped: it goes on running.
                          </p>
                        }
                        confirmLabel="Release"
                        danger
                        onConfirm={async () => {
                          const r = outcome<Lock>(await release({ key: lock.key }), "releaseLock");
                          if (r.problem) toast({ kind: "error", ...r.problem });
                          else {
                            toast({ kind: "ok", title: `Released ${r.ok.key}` });
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
