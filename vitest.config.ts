import { defineConfig } from "vitest/config";

/**
 * One config, one project per suite. Suites that disturb shared services for everyone (restarting
 * RabbitMQ, killing Redis connections) are named `*.serial.test.ts` and run alone afterwards
 * (`npm run test:serial`), so they cannot break a suite running next to them.
 */
const serial = "**/*.serial.test.ts";

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (`main`) and ESM (`module`) builds without an exports map: Node loads
    // the CJS one for the libraries, Vite would pick the ESM one for our sources, and two copies
    // of GraphQLError break every `instanceof`. One copy, as in production.
    alias: { graphql: "graphql/index.js" },
  },
  test: {
    testTimeout: 20_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["sdk/test/**/*.test.ts", "server/test/**/*.test.ts"],
          exclude: [serial],
        },
      },
      {
        extends: true,
        test: {
          name: "types",
          include: [],
          typecheck: {
            enabled: true,
            only: true,
            include: ["test/types/**/*.test-d.ts"],
            tsconfig: "./tsconfig.json",
          },
        },
      },
      {
        extends: true,
        test: {
          name: "conformance",
          include: ["test/conformance/**/*.test.ts"],
          exclude: [serial],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          exclude: [serial],
        },
      },
      {
        extends: true,
        test: { name: "server", include: ["test/server/**/*.test.ts"], exclude: [serial] },
      },
      {
        extends: true,
        test: { name: "interop", include: ["test/interop/**/*.test.ts"], exclude: [serial] },
      },
      {
        extends: true,
        test: {
          // The dashboard in headless Chromium (Debian's), and the README's start command on a
          // fresh clone: one file at a time, they are heavy.
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          exclude: [serial],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 240_000,
        },
      },
      { extends: true, test: { name: "serial", include: [serial], fileParallelism: false } },
    ],
  },
});
