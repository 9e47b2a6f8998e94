/** Child processes for tests: start until a line appears, stop, kill, and never leave one behind. */
import { type ChildProcess, spawn } from "node:child_process";

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export interface Started {
  proc: ChildProcess;
  output(): string;
}

/** Spawn and resolve once stdout or stderr matches `ready`; reject with the output if it exits first. */
export function startUntil(
  command: string,
  args: string[],
  ready: RegExp,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<Started> {
  const proc = spawn(command, args, {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${command} not ready within ${options.timeoutMs ?? 20_000} ms:\n${out}`)),
      options.timeoutMs ?? 20_000,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ proc, output: () => out });
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
}

export function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
}

export async function kill(proc: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill(signal);
  await exited(proc);
}

/**
 * A warm stop that cannot hang a suite's teardown: SIGTERM, then SIGKILL after `graceMs`, saying
 * on stderr which process had to be killed, with the end of what it printed. Resolves whether it
 * stopped by itself.
 */
export async function stopWithin(
  started: Started,
  label: string,
  graceMs = 15_000,
): Promise<boolean> {
  const { proc } = started;
  if (proc.exitCode !== null || proc.signalCode !== null) return true;
  proc.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), graceMs);
  });
  const outcome = await Promise.race([exited(proc), late]);
  clearTimeout(timer);
  if (outcome !== "late") return true;
  process.stderr.write(
    `${label} did not stop within ${graceMs} ms of SIGTERM and was killed; it printed last:\n` +
      `${started.output().slice(-4_000)}\n`,
  );
  await kill(proc, "SIGKILL");
  return false;
}
