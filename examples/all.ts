/**
 * Every example task on one app: what a worker runs to serve the whole demo (dev mode's load
 * sends tasks of each module). `celeriac worker --app examples/all.ts`.
 */
import "./catalog.js";
import "./reports.js";

export { app } from "./tasks.js";
