import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { rateLimitSuite } from "./rate-limit-suite.js";

// The fleet-wide limit's buckets live in the result backend's Redis.
rateLimitSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(9),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
