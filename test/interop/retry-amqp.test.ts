import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { PYTHON } from "../helpers/python.js";
import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { retryInteropSuite } from "./retry-suite.js";

const run = promisify(execFile);

/** Take a queue's messages with py-amqp's basic_get, as Python sees them on the wire. */
const TAKE = `
import amqp, json, sys
c = amqp.Connection('127.0.0.1:5672', userid='guest', password='guest'); c.connect(); ch = c.channel()
out = []
try:
    while True:
        m = ch.basic_get(sys.argv[1], no_ack=True)
        if m is None: break
        props = {k: v for k, v in m.properties.items() if k != 'application_headers'}
        body = m.body.decode() if isinstance(m.body, bytes) else m.body
        out.append({'headers': m.properties.get('application_headers', {}), 'properties': props, 'body': body})
except amqp.exceptions.NotFound:
    pass  # not declared yet: nothing was published to it
print(json.dumps(out, default=str)); c.close()
`;

retryInteropSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(5),
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
  async take(queue) {
    const { stdout } = await run(PYTHON, ["-c", TAKE, queue]);
    return JSON.parse(stdout);
  },
});
