import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { logsSuite } from "./logs-suite.js";

logsSuite({
  name: "RabbitMQ",
  brokerUrl: AMQP_URL,
  backendUrl: redisUrl(2),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
