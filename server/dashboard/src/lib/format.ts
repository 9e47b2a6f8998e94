/** Formatting shared by every page: times, durations, JSON. */

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour12: false })
    : d.toLocaleString(undefined, { hour12: false });
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { hour12: false });
}

/** "3 s ago", "in 2 min" */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  const text =
    abs < 1
      ? "now"
      : abs < 60
        ? `${Math.round(abs)} s`
        : abs < 3600
          ? `${Math.round(abs / 60)} min`
          : abs < 86_400
            ? `${Math.round(abs / 360) / 10} h`
            : `${Math.round(abs / 8640) / 10} d`;
  if (text === "now") return text;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (value < 0.001) return `${Math.round(value * 1_000_000)} µs`;
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 60) return `${value.toFixed(2)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

export function json(value: unknown): string {
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}

export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

/** A task's arguments in one line: the repr from its events, else its JSON. */
export function argsLine(task: { argsRepr: string | null; args: unknown }): string {
  if (task.argsRepr) return task.argsRepr;
  if (task.args === null || task.args === undefined) return "";
  return JSON.stringify(task.args);
}
