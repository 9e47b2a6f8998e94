import { defineConfig } from "prisma/config";

// `prisma generate` needs no database; `prisma migrate deploy` (where the schema engine is
// available) reads DATABASE_URL. Without the engine, `celeriac-server migrate` applies the same
// migrations.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/celeriac" },
});
