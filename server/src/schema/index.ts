/** The GraphQL schema: one file per domain, all on the one builder. */
import { lexicographicSortSchema, printSchema } from "graphql";
import { builder } from "../builder.js";
import "./errors.js";
import "./tasks.js";
import "./workers.js";
import "./stats.js";
import "./events.js";
import "./tokens.js";
import "./schedules.js";
import "./locks.js";

export const schema = builder.toSchema();

/** The schema as committed in server/schema.graphql: sorted, so diffs show real changes. */
export const printedSchema = () => printSchema(lexicographicSortSchema(schema));
