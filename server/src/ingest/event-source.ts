/**
 * Where the server's events come from. On brokers that keep broadcasts for an absent subscriber
 * (RabbitMQ) it consumes a durable, length-bounded queue bound to `celeryev` and acks each
 * message only after its batch is in the database: events sent while the server (or Postgres)
 * is down are ingested when it is back, and instances sharing the queue share the work. Elsewhere
 * (Redis's fire-and-forget PUBLISH, the memory broker) it subscribes, and acks mean nothing.
 */
import {
  type Broker,
  type CeleryEvent,
  type Consumer,
  decodeEvents,
  EVENT_EXCHANGE,
} from "@celeriac/sdk";

export interface EventDelivery {
  events: CeleryEvent[];
  /** Call once the events are stored (or, with `false`, when they could not be and must come back). */
  settle(stored: boolean): void;
}

export interface EventSourceOptions {
  queue: string;
  maxLength: number;
  /** Deliveries held unsettled at most (AMQP prefetch). */
  prefetch: number;
}

export async function openEventSource(
  broker: Broker,
  options: EventSourceOptions,
  onDelivery: (delivery: EventDelivery) => void,
): Promise<() => Promise<void>> {
  const stamp = (events: CeleryEvent[]) => {
    const received = Date.now() / 1000;
    for (const e of events) e.local_received = received;
    return events;
  };
  if (broker.capabilities.durableBroadcast) {
    const consumer: Consumer = await broker.consume(
      [
        {
          name: options.queue,
          exchange: EVENT_EXCHANGE,
          routingKey: "#",
          durable: true,
          maxLength: options.maxLength,
        },
      ],
      {
        prefetch: options.prefetch,
        onDelivery: (d) =>
          onDelivery({
            events: stamp(decodeEvents(d.message)),
            settle: (stored) => void (stored ? d.ack() : d.reject(true)).catch(() => {}),
          }),
      },
    );
    return () => consumer.cancel();
  }
  return broker.subscribe(EVENT_EXCHANGE, "#", (d) =>
    onDelivery({ events: stamp(decodeEvents(d.message)), settle: () => {} }),
  );
}
