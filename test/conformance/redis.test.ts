import { Redis } from "ioredis";
import type { Broker } from "../../sdk/src/brokers/broker.js";
import { RedisBroker } from "../../sdk/src/brokers/redis/broker.js";
import { redisUrl, requireRedis } from "../helpers/services.js";
import { brokerConformance } from "./broker-suite.js";

let n = 0;

/** Kill every connection of one broker from the server side, as a network cut or a restart would. */
async function clientKill(broker: Broker) {
  const prefix = (broker as RedisBroker).options.connectionName;
  const admin = new Redis(redisUrl(10));
  const list = (await admin.client("LIST")) as string;
  for (const line of list.split("\n")) {
    const name = /name=(\S+)/.exec(line)?.[1];
    const id = /id=(\d+)/.exec(line)?.[1];
    if (id && name?.startsWith(`${prefix}:`)) await admin.client("KILL", "ID", id);
  }
  admin.disconnect();
}

brokerConformance("redis", {
  create: () =>
    new RedisBroker(redisUrl(10), { connectionName: `conformance-${process.pid}-${n++}` }),
  setup: requireRedis,
  dropConnections: clientKill,
});
