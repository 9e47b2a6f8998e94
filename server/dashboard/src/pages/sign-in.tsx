/** Sign-in with an API token (`celeriac-server token create`, or the one dev mode prints). */
import { useState } from "react";

export function SignIn({
  reason,
  onSignIn,
}: {
  reason: string | null;
  onSignIn: (token: string) => void;
}) {
  const [token, setToken] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setProblem(null);
    try {
      const response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
        body: JSON.stringify({ query: "{ me { role } }" }),
      });
      if (response.status === 401) setProblem("This token is not valid (unknown or revoked).");
      else if (!response.ok) setProblem(`The server answered ${response.status}.`);
      else onSignIn(t);
    } catch (error) {
      setProblem(`The server could not be reached: ${(error as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="center">
      <form className="card sign-in" onSubmit={submit}>
        <h1>
          <span className="logo" aria-hidden>
            ●
          </span>{" "}
          Celeriac
        </h1>
        {reason && (
          <p className="problem" role="alert">
            {reason}
          </p>
        )}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          placeholder="cel_…"
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
        {problem && (
          <p className="problem" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || !token.trim()}>
          Sign in
        </button>
        <p className="muted small">
          Create one with <code>celeriac-server token create --role operator --name me</code>; dev
          mode (<code>npm start</code>) prints an admin token. It is kept in this browser only.
        </p>
      </form>
    </main>
  );
}
