/**
 * Run a task: pick one the fleet can run (or type any name, a Python task's too), fill a form
 * generated from its argument schema (a JSON editor when it has none), set the options, send,
 * and land on its live page.
 */
import { lazy, Suspense, useMemo, useRef, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import type { SchemaFormHandle } from "../components/schema-form.js";
import { Loading, ProblemBox } from "../components/ui.js";
import {
  type RegisteredTask,
  RegisteredTasksChanged,
  RegisteredTasksQuery,
  SendTask,
  type SendTaskInput,
} from "../graphql.js";
import { useCan } from "../lib/auth.js";
import { outcome, type Problem, problemOfTransport } from "../lib/errors.js";
import { useEach } from "../lib/live.js";

// The form library and its validator are most of the bundle: loaded with this form only.
const SchemaForm = lazy(() =>
  import("../components/schema-form.js").then((m) => ({ default: m.SchemaForm })),
);

function parseJson(text: string, what: string, kind: "array" | "object"): unknown {
  const trimmed = text.trim();
  if (!trimmed) return kind === "array" ? [] : {};
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    throw new Error(`${what}: not valid JSON (${(error as Error).message})`);
  }
  if (kind === "array" && !Array.isArray(value)) throw new Error(`${what}: must be a JSON array`);
  if (kind === "object" && (typeof value !== "object" || value === null || Array.isArray(value)))
    throw new Error(`${what}: must be a JSON object`);
  return value;
}

export function RunPage() {
  const [params] = useSearchParams();
  const canOperate = useCan("operator");
  const navigate = useNavigate();
  const [{ data, error }] = useQuery({ query: RegisteredTasksQuery });
  // A worker that comes (or learns new tasks) while the page is open shows up here at once.
  const [changed, setChanged] = useState<RegisteredTask[] | null>(null);
  useEach(RegisteredTasksChanged, {}, (d) => setChanged(d.registeredTasksChanged));
  const [name, setName] = useState(params.get("name") ?? "");
  const registered = changed ?? data?.registeredTasks ?? [];
  const current = registered.find((t) => t.name === name.trim());
  const schema = current?.argsSchema ?? null;

  const initialArgs = params.get("args");
  const [formArgs, setFormArgs] = useState<unknown>(() => {
    try {
      return initialArgs ? JSON.parse(initialArgs) : undefined;
    } catch {
      return undefined;
    }
  });
  const [argsText, setArgsText] = useState(initialArgs ?? "[]");
  const [kwargsText, setKwargsText] = useState(params.get("kwargs") ?? "{}");
  const [asJson, setAsJson] = useState(false);
  const [countdown, setCountdown] = useState("");
  const [expires, setExpires] = useState("");
  const [queue, setQueue] = useState(params.get("queue") ?? "");
  const [priority, setPriority] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<SchemaFormHandle>(null);
  const [, send] = useMutation(SendTask);
  const useForm = schema !== null && !asJson;

  const choose = (next: string) => {
    if (next === name) return;
    setName(next);
    setFormArgs(undefined);
    setProblem(null);
  };
  const toggleJson = () => {
    if (!asJson) setArgsText(JSON.stringify(formArgs ?? []));
    else {
      try {
        setFormArgs(JSON.parse(argsText));
      } catch {
        // keep the form's own values
      }
    }
    setAsJson(!asJson);
  };

  const grouped = useMemo(
    () => [...registered].sort((a, b) => a.name.localeCompare(b.name)),
    [registered],
  );

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(null);
    const input: SendTaskInput = { name: name.trim() };
    try {
      if (!input.name) throw new Error("Choose a task");
      if (useForm) {
        if (form.current && !form.current.validate())
          throw new Error("Some arguments are not valid: see the form");
        input.args = (formArgs as unknown[] | undefined) ?? [];
      } else input.args = parseJson(argsText, "Arguments", "array") as unknown[];
      input.kwargs = parseJson(kwargsText, "Keyword arguments", "object") as Record<
        string,
        unknown
      >;
      if (countdown) input.countdown = Number(countdown);
      if (expires) input.expires = Number(expires);
      if (priority) input.priority = Number(priority);
      if (queue.trim()) input.queue = queue.trim();
    } catch (e) {
      setProblem({ title: (e as Error).message, code: "INVALID_INPUT" });
      return;
    }
    setBusy(true);
    const r = outcome<{ id: string }>(await send({ input }), "sendTask");
    setBusy(false);
    if (r.problem) setProblem(r.problem);
    else navigate(`/tasks/${r.ok.id}`);
  };

  return (
    <section className="run">
      <h1>Run a task</h1>
      {error && <ProblemBox problem={problemOfTransport(error)} />}
      {!canOperate && (
        <p className="notice">Your token is a viewer's: sending tasks needs the operator role.</p>
      )}
      <form onSubmit={submit} className="stack">
        <label>
          Task
          <input
            name="task"
            list="registered-tasks"
            value={name}
            placeholder="tasks.add, or any task name"
            autoComplete="off"
            onChange={(e) => choose(e.target.value)}
          />
          <datalist id="registered-tasks">
            {grouped.map((t) => (
              <option key={t.name} value={t.name}>
                {t.workers.length} worker(s)
              </option>
            ))}
          </datalist>
        </label>
        {grouped.length > 0 && grouped.length <= 40 && (
          <fieldset className="chips">
            <legend className="sr-only">Registered tasks</legend>
            {grouped.map((t) => (
              <button
                type="button"
                key={t.name}
                className={`chip${t.name === name ? " on" : ""}`}
                onClick={() => choose(t.name)}
              >
                {t.name}
                {t.argsSchema !== null && <span title="has an argument schema"> ✎</span>}
              </button>
            ))}
          </fieldset>
        )}
        {current && (
          <p className="muted small">
            Runs on {current.workers.join(", ") || "no online worker"}
            {current.rateLimit ? ` · rate limit ${current.rateLimit}` : ""}
          </p>
        )}
        <fieldset>
          <legend>
            Arguments{" "}
            {schema !== null && (
              <button type="button" className="link small" onClick={toggleJson}>
                {asJson ? "use the form" : "edit as JSON"}
              </button>
            )}
          </legend>
          {useForm ? (
            <Suspense fallback={<Loading what="Loading the form" />}>
              <SchemaForm ref={form} schema={schema} value={formArgs} onChange={setFormArgs} />
            </Suspense>
          ) : (
            <label>
              Positional arguments (a JSON array)
              <textarea
                name="args"
                className="code"
                rows={4}
                spellCheck={false}
                value={argsText}
                onChange={(e) => setArgsText(e.target.value)}
              />
            </label>
          )}
          <label>
            Keyword arguments (a JSON object)
            <textarea
              name="kwargs"
              className="code"
              rows={2}
              spellCheck={false}
              value={kwargsText}
              onChange={(e) => setKwargsText(e.target.value)}
            />
          </label>
        </fieldset>
        <fieldset className="grid-fields">
          <legend>Options</legend>
          <label>
            Countdown (s)
            <input
              name="countdown"
              type="number"
              min={0}
              step="any"
              value={countdown}
              onChange={(e) => setCountdown(e.target.value)}
            />
          </label>
          <label>
            Expires after (s)
            <input
              name="expires"
              type="number"
              min={0}
              step="any"
              value={expires}
              onChange={(e) => setExpires(e.target.value)}
            />
          </label>
          <label>
            Queue
            <input
              name="queue"
              value={queue}
              placeholder="celery"
              onChange={(e) => setQueue(e.target.value)}
            />
          </label>
          <label>
            Priority (0–9)
            <input
              name="priority"
              type="number"
              min={0}
              max={9}
              value={priority}
              onChange={(e) => setPriority(e.target.value)}
            />
          </label>
        </fieldset>
        {problem && <ProblemBox problem={problem} onClose={() => setProblem(null)} />}
        <div>
          <button type="submit" className="primary" disabled={busy || !canOperate || !name.trim()}>
            Send
          </button>
        </div>
      </form>
    </section>
  );
}
