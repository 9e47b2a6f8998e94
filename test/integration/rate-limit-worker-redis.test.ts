import { redisUrl, requireRedis } from "../helpers/services.js";
import { rateLimitSuite } from "./rate-limit-suite.js";

rateLimitSuite({
  name: "Redis",
  broker: redisUrl(9),
  backend: redisUrl(9),
  setup: requireRedis,
});
