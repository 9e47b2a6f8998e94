import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { PYTHON } from "../helpers/python.js";
import { AMQP_URL, redisUrl, requireRabbitMQ, requireRedis } from "../helpers/services.js";
import { interopSuite } from "./interop-suite.js";

const run = promisify(execFile);

/** Read a queue's messages with py-amqp's basic_get, as Python sees them on the wire. */
const PEEK = `
import amqp, json, sys
c = amqp.Connection('127.0.0.1:5672', userid='guest', password='guest'); c.connect(); ch = c.channel()
out = []
while True:
    m = ch.basic_get(sys.argv[1], no_ack=True)
    if m is None: break
    props = {k: v for k, v in m.properties.items() if k not in ('application_headers',)}
    out.append({'headers': m.properties.get('application_headers', {}), 'properties': props, 'body': m.body.decode() if isinstance(m.body, bytes) else m.body})
print(json.dumps(out, default=str)); c.close()
`;

interopSuite({
  name: "RabbitMQ",
  broker: AMQP_URL,
  backend: redisUrl(5),
  // Native priorities on a queue both sides declare with x-max-priority 10: highest first.
  priorities: { sent: [0, 9, 5], served: [9, 5, 0], maxPriority: 10 },
  setup: async () => {
    await requireRabbitMQ();
    await requireRedis();
  },
  async peek(queue) {
    const { stdout } = await run(PYTHON, ["-c", PEEK, queue]);
    const messages = JSON.parse(stdout) as Array<{
      headers: Record<string, unknown>;
      properties: Record<string, unknown>;
      body: string;
    }>;
    // py-amqp names properties its own way; compare what Celery sets.
    return messages.map((m) => ({
      ...m,
      properties: Object.fromEntries(
        Object.entries(m.properties).filter(
          ([k]) => !["content_type", "content_encoding"].includes(k),
        ),
      ),
    }));
  },
});
