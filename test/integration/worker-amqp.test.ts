import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { workerSuite } from "./worker-suite.js";

workerSuite("RabbitMQ", {
  brokerUrl: AMQP_URL,
  backendUrl: redisUrl(8),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
