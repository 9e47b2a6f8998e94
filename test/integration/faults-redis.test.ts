import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { beforeAll, describe, it } from "vitest";
import { redisUrl, requireRedis } from "../helpers/services.js";
import { expectNothingLost, killRepeatedly, runFaultScenario } from "./faults-suite.js";

// A short visibility timeout so the unacked messages of a killed worker come back within the test.
const broker = `${redisUrl(13)}?visibility_timeout=4&restore_interval=1`;
const run = promisify(execFile);

describe("no lost work on Redis", () => {
  beforeAll(requireRedis);

  it("completes 2,000 late-acked tasks through three SIGKILLs of the worker", async () => {
    expectNothingLost(
      await runFaultScenario({ brokerUrl: broker, tasks: 2000, disrupt: killRepeatedly(3, 700) }),
    );
  }, 180_000);

  it("completes every task when the worker's Redis connections are killed", async () => {
    const result = await runFaultScenario({
      brokerUrl: broker,
      tasks: 2000,
      disrupt: async (worker) => {
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, 600));
          // Every connection the worker opened carries a client name starting with "celeriac".
          const { stdout } = await run("redis-cli", ["-n", "13", "CLIENT", "LIST"]);
          const ids = stdout
            .split("\n")
            .filter((l) => / name=celeriac/.test(l) && / db=13 /.test(l))
            .map((l) => /id=(\d+)/.exec(l)?.[1])
            .filter(Boolean) as string[];
          for (const id of ids)
            await run("redis-cli", ["CLIENT", "KILL", "ID", id]).catch(() => {});
        }
        return worker;
      },
    });
    expectNothingLost(result);
  }, 180_000);
});
