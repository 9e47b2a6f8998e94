/** Restarts RabbitMQ: runs alone (serial project), since every other suite using it would fail meanwhile. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { beforeAll, describe, it } from "vitest";
import { AMQP_URL, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { expectNothingLost, runFaultScenario } from "./faults-suite.js";

const run = promisify(execFile);

describe("no lost work across a RabbitMQ restart", () => {
  beforeAll(async () => {
    await requireRabbitMQ();
    await requireRedis();
  });

  it("resumes consuming by itself and completes every task", async () => {
    const result = await runFaultScenario({
      brokerUrl: AMQP_URL,
      tasks: 2000,
      disrupt: async (worker) => {
        await new Promise((r) => setTimeout(r, 700));
        await run("rabbitmqctl", ["stop_app"]);
        await run("rabbitmqctl", ["start_app"]);
        return worker;
      },
    });
    expectNothingLost(result);
  }, 240_000);
});
