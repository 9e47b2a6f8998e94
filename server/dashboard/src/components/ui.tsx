/** Small building blocks: state badges, problems, confirmations, JSON, toasts. */
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
} from "react";
import type { WorkerReply } from "../graphql.js";
import type { Problem } from "../lib/errors.js";

export function StateBadge({ state }: { state: string }) {
  return <span className={`state state-${state.toLowerCase()}`}>{state}</span>;
}

export function ProblemBox({ problem, onClose }: { problem: Problem; onClose?: () => void }) {
  return (
    <div className="problem" role="alert">
      <div className="problem-head">
        {problem.code && <code className="problem-code">{problem.code}</code>}
        <strong>{problem.title}</strong>
        {onClose && (
          <button type="button" className="link" onClick={onClose} aria-label="Dismiss">
            ×
          </button>
        )}
      </div>
      {problem.details && problem.details.length > 0 && (
        <ul>
          {problem.details.map((d) => (
            <li key={d}>{d}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre className="json">{value === undefined ? "" : JSON.stringify(value, null, 2)}</pre>;
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return <p className="muted">{what}…</p>;
}

/**
 * A button that asks first, in a modal dialog; `onConfirm` runs only once confirmed.
 */
export function ConfirmButton({
  label,
  title,
  body,
  confirmLabel,
  danger,
  disabled,
  className,
  onConfirm,
}: {
  label: ReactNode;
  title: string;
  body?: ReactNode;
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  className?: string;
  onConfirm: () => void | Promise<void>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <button
        type="button"
        className={className ?? (danger ? "danger" : undefined)}
        disabled={disabled || busy}
        onClick={() => dialog.current?.showModal()}
      >
        {label}
      </button>
      <dialog ref={dialog} className="confirm">
        <form method="dialog">
          <h3>{title}</h3>
          {body && <div className="confirm-body">{body}</div>}
          <div className="row end">
            <button type="submit" value="cancel">
              Cancel
            </button>
            <button
              type="button"
              className={danger ? "danger" : "primary"}
              onClick={async () => {
                dialog.current?.close();
                setBusy(true);
                try {
                  await onConfirm();
                } finally {
                  setBusy(false);
                }
              }}
            >
              {confirmLabel ?? title}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

/** Workers' answers to a control command. */
export function Replies({ replies }: { replies: WorkerReply[] }) {
  if (replies.length === 0) return <span>no worker answered</span>;
  return (
    <ul className="replies">
      {replies.map((r) => (
        <li key={r.hostname} className={r.ok ? "ok" : "bad"}>
          <code>{r.hostname}</code> {r.ok ? "✓" : "✗"} {r.message ?? ""}
        </li>
      ))}
    </ul>
  );
}

interface Toast {
  id: number;
  kind: "ok" | "error";
  title: string;
  body?: ReactNode;
  code?: string;
  details?: string[];
}

type Push = (toast: Omit<Toast, "id">) => void;
const ToastContext = createContext<Push>(() => {});
export const useToast = () => useContext(ToastContext);

/** Messages after an action: successes fade, problems stay until dismissed. */
export function Toasts({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const push = useCallback<Push>((toast) => {
    const id = next.current++;
    setToasts((all) => [...all.slice(-4), { ...toast, id }]);
    if (toast.kind === "ok")
      setTimeout(() => setToasts((all) => all.filter((t) => t.id !== id)), 6000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) =>
          t.kind === "error" ? (
            <ProblemBox
              key={t.id}
              problem={{ title: t.title, code: t.code, details: t.details }}
              onClose={() => setToasts((all) => all.filter((x) => x.id !== t.id))}
            />
          ) : (
            <div key={t.id} className="toast" role="status">
              <strong>{t.title}</strong>
              {t.body && <div>{t.body}</div>}
            </div>
          ),
        )}
      </div>
    </ToastContext.Provider>
  );
}

/** Re-renders every `ms`, for relative times ("3 s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
