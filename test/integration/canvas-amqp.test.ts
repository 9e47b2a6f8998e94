import { AMQP_URL, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { canvasSuite } from "./canvas-suite.js";

canvasSuite({
  name: "RabbitMQ",
  brokerUrl: AMQP_URL,
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
});
