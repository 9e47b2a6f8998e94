/**
 * One pool child, thread or process, behind one small interface: send, receive, exit, kill.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { ChildMessage, ParentMessage } from "./protocol.js";

const ENTRY = new URL("./bootstrap.mjs", import.meta.url);

export interface ChildConfig {
  appModule: string;
  hostname: string;
  logLevel: string;
  /**
   * The worker's broker and result backend URLs (as `--broker` may have set them): a task that
   * sends tasks from a child must send them where the worker's app does, not where the module
   * alone would.
   */
  broker?: string;
  resultBackend?: string | null;
  defaultQueue?: string;
}

export interface Transport {
  /** The process id (processes) or thread id (threads), for logs and `stats`. */
  readonly id: number;
  send(message: ParentMessage): void;
  onMessage(listener: (message: ChildMessage) => void): void;
  /** Called once when the child is gone, with how it ended (and the error that ended a thread). */
  onExit(
    listener: (code: number | null, signal: NodeJS.Signals | null, reason?: string) => void,
  ): void;
  kill(signal: NodeJS.Signals): void;
}

class ThreadTransport implements Transport {
  private readonly worker: Worker;

  constructor(config: ChildConfig) {
    this.worker = new Worker(ENTRY, { workerData: config });
  }

  get id() {
    return this.worker.threadId;
  }

  send(message: ParentMessage) {
    this.worker.postMessage(message);
  }

  onMessage(listener: (message: ChildMessage) => void) {
    this.worker.on("message", listener);
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null, reason?: string) => void) {
    let failure: string | undefined;
    // An uncaught error (or running out of heap) ends the thread; "exit" follows.
    this.worker.on("error", (error) => {
      failure = `${error.name}: ${error.message}`;
    });
    this.worker.once("exit", (code) => listener(code, null, failure));
  }

  kill() {
    // A thread has no signals: terminate() stops it even in a busy loop.
    void this.worker.terminate();
  }
}

class ProcessTransport implements Transport {
  private readonly child: ChildProcess;

  constructor(config: ChildConfig) {
    this.child = fork(fileURLToPath(ENTRY), [], {
      env: { ...process.env, CELERIAC_POOL_CHILD: JSON.stringify(config) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
  }

  get id() {
    return this.child.pid ?? -1;
  }

  send(message: ParentMessage) {
    this.child.send(message);
  }

  onMessage(listener: (message: ChildMessage) => void) {
    this.child.on("message", (m) => listener(m as ChildMessage));
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void) {
    this.child.once("exit", listener);
    this.child.on("error", () => {});
  }

  kill(signal: NodeJS.Signals) {
    this.child.kill(signal);
  }
}

export function spawnChild(kind: "threads" | "processes", config: ChildConfig): Transport {
  return kind === "threads" ? new ThreadTransport(config) : new ProcessTransport(config);
}
