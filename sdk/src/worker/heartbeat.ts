/**
 * The worker's own events: `worker-online` at start, `worker-heartbeat` every interval (with
 * active and processed counts and the load average), `worker-offline` at shutdown.
 */
import os from "node:os";
import type { EventDispatcher } from "../events/dispatcher.js";
import { SDK_VERSION } from "../version.js";

export interface HeartbeatSource {
  activeCount(): number;
  processedCount(): number;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly source: HeartbeatSource,
    private readonly intervalSeconds: number,
  ) {}

  private fields(freq = this.intervalSeconds) {
    return {
      freq,
      active: this.source.activeCount(),
      processed: this.source.processedCount(),
      loadavg: os.loadavg().map((n) => Math.round(n * 100) / 100),
      sw_ident: "celeriac",
      sw_ver: SDK_VERSION,
      sw_sys: os.type(),
    };
  }

  start(): void {
    this.dispatcher.send("worker-online", this.fields());
    this.timer = setInterval(() => this.beat(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Send a heartbeat now (also the answer to the `heartbeat` control command). */
  beat(): void {
    this.dispatcher.send("worker-heartbeat", this.fields());
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.dispatcher.send("worker-offline", this.fields());
  }
}
