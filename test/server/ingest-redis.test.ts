import { redisUrl, requireRedis } from "../helpers/services.js";
import { ingestSuite } from "./ingest-suite.js";

ingestSuite({ name: "Redis", broker: redisUrl(1), backend: redisUrl(1), setup: requireRedis });
