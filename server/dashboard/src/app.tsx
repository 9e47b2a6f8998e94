/** The shell: sign-in, the GraphQL client for the signed-in token, navigation and routes. */
import { useEffect, useMemo, useRef, useState } from "react";
import { BrowserRouter, NavLink, Route, Routes } from "react-router";
import { Provider, useQuery } from "urql";
import { Toasts } from "./components/ui.js";
import { MeQuery } from "./graphql.js";
import { type Session, SessionContext, saveToken, storedToken } from "./lib/auth.js";
import { type ClientHandle, type ConnectionState, createClient } from "./lib/client.js";
import { problemOfTransport } from "./lib/errors.js";
import { LocksPage } from "./pages/locks.js";
import { OverviewPage } from "./pages/overview.js";
import { QueuesPage } from "./pages/queues.js";
import { RunPage } from "./pages/run.js";
import { ScheduleEditPage, SchedulePage, SchedulesPage } from "./pages/schedules.js";
import { SignIn } from "./pages/sign-in.js";
import { TaskPage } from "./pages/task.js";
import { TasksPage } from "./pages/tasks.js";
import { WorkersPage } from "./pages/workers.js";

export function Root() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [reason, setReason] = useState<string | null>(null);
  if (!token)
    return (
      <SignIn
        reason={reason}
        onSignIn={(t) => {
          saveToken(t);
          setReason(null);
          setToken(t);
        }}
      />
    );
  return (
    <SignedIn
      key={token}
      token={token}
      onSignOut={(why) => {
        saveToken(null);
        setReason(why);
        setToken(null);
      }}
    />
  );
}

function SignedIn({
  token,
  onSignOut,
}: {
  token: string;
  onSignOut: (why: string | null) => void;
}) {
  const [connection, setConnection] = useState<ConnectionState>("connecting");
  const signedOut = useRef(false);
  const leave = useRef(onSignOut);
  leave.current = onSignOut;
  // Made in an effect, not during render: each client is closed by the cleanup of the effect
  // that made it (React may mount twice in development).
  const [handle, setHandle] = useState<ClientHandle | null>(null);
  useEffect(() => {
    // A closed client's socket reports its end late: it must not mark its successor offline.
    let current = true;
    const made = createClient(
      token,
      () => {
        if (signedOut.current) return;
        signedOut.current = true;
        leave.current("The server refused this token (unknown or revoked): sign in again.");
      },
      (state) => current && setConnection(state),
    );
    setHandle(made);
    return () => {
      current = false;
      made.close();
    };
  }, [token]);
  if (!handle) return null;
  return (
    <Provider value={handle.client}>
      <WithSession connection={connection} onSignOut={() => onSignOut(null)} />
    </Provider>
  );
}

function WithSession({
  connection,
  onSignOut,
}: {
  connection: ConnectionState;
  onSignOut: () => void;
}) {
  const [{ data, error }, retry] = useQuery({ query: MeQuery, requestPolicy: "network-only" });
  const session = useMemo<Session | null>(
    () => (data ? { ...data.me, signOut: onSignOut } : null),
    [data, onSignOut],
  );
  if (!session) {
    const problem = error ? problemOfTransport(error) : null;
    return (
      <main className="center">
        {problem ? (
          <div className="card">
            <p>
              The control plane did not answer: <code>{problem.title}</code>
            </p>
            <div className="row">
              <button type="button" onClick={() => retry({ requestPolicy: "network-only" })}>
                Try again
              </button>
              <button type="button" onClick={onSignOut}>
                Sign out
              </button>
            </div>
          </div>
        ) : (
          <p className="muted">Connecting…</p>
        )}
      </main>
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <BrowserRouter>
        <Toasts>
          <Layout connection={connection}>
            <Routes>
              <Route path="/" element={<OverviewPage />} />
              <Route path="/tasks" element={<TasksPage />} />
              <Route path="/tasks/:id" element={<TaskPage />} />
              <Route path="/run" element={<RunPage />} />
              <Route path="/workers" element={<WorkersPage />} />
              <Route path="/queues" element={<QueuesPage />} />
              <Route path="/locks" element={<LocksPage />} />
              <Route path="/schedules" element={<SchedulesPage />} />
              <Route path="/schedules/new" element={<ScheduleEditPage />} />
              <Route path="/schedules/:id" element={<SchedulePage />} />
              <Route path="/schedules/:id/edit" element={<ScheduleEditPage />} />
              <Route path="*" element={<p>Nothing here.</p>} />
            </Routes>
          </Layout>
        </Toasts>
      </BrowserRouter>
    </SessionContext.Provider>
  );
}

const NAV: Array<[string, string]> = [
  ["/", "Overview"],
  ["/tasks", "Tasks"],
  ["/run", "Run a task"],
  ["/workers", "Workers"],
  ["/queues", "Queues"],
  ["/locks", "Locks"],
  ["/schedules", "Schedules"],
];

function Layout({
  connection,
  children,
}: {
  connection: ConnectionState;
  children: React.ReactNode;
}) {
  return (
    <SessionContext.Consumer>
      {(session) => (
        <div className="layout">
          <header className="top">
            <NavLink to="/" className="brand">
              <span className="logo" aria-hidden>
                ●
              </span>{" "}
              Celeriac
            </NavLink>
            <nav aria-label="Main">
              {NAV.map(([to, label]) => (
                <NavLink key={to} to={to} end={to === "/"}>
                  {label}
                </NavLink>
              ))}
            </nav>
            <div className="who">
              <span className={`live live-${connection}`} title={`Live updates: ${connection}`}>
                {connection === "live" ? "live" : connection}
              </span>
              <span className="user" data-testid="whoami">
                {session.name} <span className="role">{session.role}</span>
              </span>
              <button type="button" className="link" onClick={session.signOut}>
                Sign out
              </button>
            </div>
          </header>
          <main className="page">{children}</main>
        </div>
      )}
    </SessionContext.Consumer>
  );
}
