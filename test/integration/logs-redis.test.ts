import { redisUrl, requireRedis } from "../helpers/services.js";
import { logsSuite } from "./logs-suite.js";

logsSuite({ name: "Redis", brokerUrl: redisUrl(2), backendUrl: redisUrl(2), setup: requireRedis });
