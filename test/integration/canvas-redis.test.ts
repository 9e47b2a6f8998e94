import { requireRedis } from "../helpers/services.js";
import { BACKEND_URL, canvasSuite } from "./canvas-suite.js";

canvasSuite({ name: "Redis", brokerUrl: BACKEND_URL, setup: requireRedis });
