import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { ingestSuite } from "./ingest-suite.js";

ingestSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(1),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
