import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { uniqueSuite } from "./unique-suite.js";

// The broker is RabbitMQ, so the locks live in the Redis result backend.
uniqueSuite({
  name: "RabbitMQ",
  brokerUrl: AMQP_URL,
  backendUrl: redisUrl(2),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
