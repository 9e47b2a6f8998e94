import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AmqpBroker } from "../../sdk/src/brokers/amqp/broker.js";
import type { Broker } from "../../sdk/src/brokers/broker.js";
import { AMQP_URL, requireRabbitMQ } from "../helpers/services.js";
import { brokerConformance } from "./broker-suite.js";

const run = promisify(execFile);
let n = 0;

/** Close a broker's connection from the server side, as a network cut would. */
async function closeConnection(broker: Broker) {
  const name = (broker as AmqpBroker).options.connectionName;
  const { stdout } = await run("rabbitmqctl", [
    "-q",
    "list_connections",
    "pid",
    "client_properties",
  ]);
  for (const line of stdout.split("\n")) {
    const [pid, properties = ""] = line.split("\t");
    if (pid?.startsWith("<") && properties.includes(`{"connection_name","${name}"}`))
      await run("rabbitmqctl", ["close_connection", pid, "conformance test"]);
  }
}

brokerConformance("amqp", {
  create: () => new AmqpBroker(AMQP_URL, { connectionName: `conformance-${process.pid}-${n++}` }),
  setup: requireRabbitMQ,
  dropConnections: closeConnection,
});
