/** A graphql-ws client for tests: subscribe over a real WebSocket and read results in order. */
import { type Client, createClient } from "graphql-ws";
import WebSocket from "ws";

export interface Subscription<T> {
  /** Results received so far. */
  readonly values: T[];
  /** Resolve with the first result (received already or later) that matches, or reject after `ms`. */
  until(match: (value: T) => boolean, ms?: number): Promise<T>;
  close(): void;
}

export function wsClient(httpUrl: string, token: string | null): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    // A refused connection surfaces through the subscription's error; no console noise.
    onNonLazyError: () => {},
  });
}

export function subscribe<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): Subscription<T> {
  const values: T[] = [];
  const waiters = new Set<() => void>();
  let failure: unknown;
  const dispose = client.subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) failure = new Error(JSON.stringify(result.errors));
        else if (result.data) values.push(result.data as T);
        for (const w of waiters) w();
      },
      error: (error) => {
        // A refused or dropped socket reports a CloseEvent: keep its code and reason.
        const close = error as { code?: number; reason?: string };
        failure =
          error instanceof Error
            ? error
            : new Error(`socket closed: ${close.code ?? "?"} ${close.reason ?? ""}`.trim());
        for (const w of waiters) w();
      },
      complete: () => {},
    },
  );
  return {
    values,
    until(match, ms = 15_000) {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          const found = values.find(match);
          if (found !== undefined) {
            cleanup();
            resolve(found);
          } else if (failure) {
            cleanup();
            reject(failure instanceof Error ? failure : new Error(JSON.stringify(failure)));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching result within ${ms} ms; got ${JSON.stringify(values).slice(0, 2000)}`,
            ),
          );
        }, ms);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: dispose,
  };
}

/**
 * Resolve once the server runs exactly `count` subscriptions: they are set up, and ended, a
 * moment after the client asks.
 */
export async function subscribed(
  server: { readonly subscriptions: number },
  count: number,
  ms = 15_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (server.subscriptions !== count) {
    if (Date.now() > until)
      throw new Error(
        `${count} subscriptions not running after ${ms} ms (${server.subscriptions})`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
