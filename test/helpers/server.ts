/**
 * A control-plane server for tests: a fresh Postgres database, tokens for each role, and a
 * GraphQL caller through `yoga.fetch` (no socket) or over HTTP once started on port 0.
 */
import { buildApp, type CeleriacServer, type ServerConfigInput } from "@celeriac/server";
import { pino } from "pino";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export interface TestServer {
  server: CeleriacServer;
  database: TestDatabase;
  tokens: { viewer: string; operator: string; admin: string };
  /** A GraphQL request as `token` (default: admin); throws on transport errors only. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string | null,
  ): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export async function startTestServer(
  config: Partial<ServerConfigInput> & { brokerUrl: string },
  options: { start?: boolean; database?: TestDatabase } = {},
): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  const server = await buildApp(
    { databaseUrl: database.url, port: 0, logLevel: "warn", beat: false, ...config },
    pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  );
  const tokens = {
    viewer: (await server.services.tokens.create("test viewer", "viewer")).token,
    operator: (await server.services.tokens.create("test operator", "operator")).token,
    admin: (await server.services.tokens.create("test admin", "admin")).token,
  };
  if (options.start !== false) await server.start();
  return {
    server,
    database,
    tokens,
    async gql(query, variables = {}, token = tokens.admin) {
      const response = await server.yoga.fetch("http://celeriac.test/graphql", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as GraphQLResponse;
      return { ...body, status: response.status } as GraphQLResponse<never>;
    },
    async close() {
      await server.stop();
      if (!options.database) await database.drop();
    },
  };
}
