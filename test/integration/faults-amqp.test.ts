import { beforeAll, describe, it } from "vitest";
import { AMQP_URL, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { expectNothingLost, killRepeatedly, runFaultScenario } from "./faults-suite.js";

describe("no lost work on RabbitMQ", () => {
  beforeAll(async () => {
    await requireRabbitMQ();
    await requireRedis();
  });

  it("completes 2,000 late-acked tasks through three SIGKILLs of the worker", async () => {
    expectNothingLost(
      await runFaultScenario({ brokerUrl: AMQP_URL, tasks: 2000, disrupt: killRepeatedly(3, 700) }),
    );
  }, 180_000);
});
