/**
 * The GraphQL client: queries and mutations over HTTP, subscriptions over graphql-ws, both with
 * the signed-in token. A 401 (or a refused socket) signs out, with the reason shown.
 */
import {
  Client,
  cacheExchange,
  fetchExchange,
  mapExchange,
  subscriptionExchange,
} from "@urql/core";
import { createClient as createWsClient } from "graphql-ws";

export type ConnectionState = "connecting" | "live" | "offline";

export interface ClientHandle {
  client: Client;
  close(): void;
}

export function createClient(
  token: string,
  onUnauthorized: () => void,
  onConnection: (state: ConnectionState) => void,
): ClientHandle {
  const origin = window.location.origin;
  const ws = createWsClient({
    url: `${origin.replace(/^http/, "ws")}/graphql`,
    connectionParams: { authorization: `Bearer ${token}` },
    // One socket for the whole session, open even on pages that subscribe to nothing: the
    // header's indicator then says whether live updates would reach this page, and a server
    // that went away shows as offline at once.
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    // A refused token (4403) will not be accepted on the next try either: the user signs in again.
    shouldRetry: (event) => (event as CloseEvent | undefined)?.code !== 4403,
    retryWait: async (retries) => {
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** retries, 10_000)));
    },
    on: {
      connecting: () => onConnection("connecting"),
      connected: () => onConnection("live"),
      closed: (event) => {
        onConnection("offline");
        // The server refuses the socket of an unknown or revoked token (4403 Forbidden).
        if ((event as CloseEvent | undefined)?.code === 4403) onUnauthorized();
      },
    },
  });
  const client = new Client({
    url: `${origin}/graphql`,
    requestPolicy: "cache-and-network",
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    exchanges: [
      mapExchange({
        onError(error) {
          const status = (error.response as Response | undefined)?.status;
          const code = error.graphQLErrors[0]?.extensions?.code;
          if (status === 401 || code === "UNAUTHENTICATED") onUnauthorized();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return {
    client,
    close() {
      void ws.dispose();
    },
  };
}
