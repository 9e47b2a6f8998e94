import { AMQP_URL, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { canvasInteropSuite } from "./canvas-suite.js";

canvasInteropSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
