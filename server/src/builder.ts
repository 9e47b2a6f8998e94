/**
 * The one Pothos schema builder. Plugin order matters: errors wraps the others so that a denied
 * role (scope-auth) or a thrown ApiError becomes a typed result; prisma plans relation loading;
 * relay gives connections; complexity bounds what one query may cost.
 */
import SchemaBuilder from "@pothos/core";
import ComplexityPlugin from "@pothos/plugin-complexity";
import ErrorsPlugin from "@pothos/plugin-errors";
import PrismaPlugin from "@pothos/plugin-prisma";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin, { type AuthFailure, AuthScopeFailureType } from "@pothos/plugin-scope-auth";
import { DateTimeResolver, JSONResolver } from "graphql-scalars";
import { hasRole } from "./auth/roles.js";
import type { Context } from "./context.js";
import { ForbiddenError } from "./errors.js";
import type PrismaTypes from "./generated/pothos-types.js";
import { getDatamodel } from "./generated/pothos-types.js";
import type { PrismaClient } from "./generated/prisma/client.js";

export interface BuilderTypes {
  PrismaTypes: PrismaTypes;
  Context: Context;
  AuthScopes: { viewer: boolean; operator: boolean; admin: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export const builder = new SchemaBuilder<BuilderTypes>({
  plugins: [ErrorsPlugin, ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  errors: {
    defaultTypes: [],
    // `sendTask` -> `SendTaskResult` (a union) and `SendTaskSuccess`, rather than Mutation-prefixed names.
    defaultUnionOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Result` },
    defaultResultOptions: { name: ({ fieldName }) => `${capitalize(fieldName)}Success` },
  },
  scopeAuth: {
    authScopes: (ctx) => ({
      viewer: hasRole(ctx.viewer, "viewer"),
      operator: hasRole(ctx.viewer, "operator"),
      admin: hasRole(ctx.viewer, "admin"),
    }),
    unauthorizedError: (_parent, ctx, info, result) => {
      const role = requiredScope(result.failure) ?? "required";
      if (info.parentType.name === "Mutation")
        ctx.services.audit.denied(ctx.viewer, info.fieldName, role);
      return new ForbiddenError(role);
    },
  },
  prisma: {
    // The client is per server instance (ctx.db); the plugin gets it from the context.
    client: (ctx) => ctx.db.prisma as PrismaClient,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: (ctx) => ({ complexity: ctx.limits.complexity, depth: ctx.limits.depth }),
  },
});

/** The role a denied field asked for, to say so in the ForbiddenError. */
function requiredScope(failure: AuthFailure): string | null {
  if (failure.kind === AuthScopeFailureType.AuthScope) return failure.scope;
  if (
    failure.kind === AuthScopeFailureType.AnyAuthScopes ||
    failure.kind === AuthScopeFailureType.AllAuthScopes
  )
    for (const f of failure.failures) {
      const scope = requiredScope(f);
      if (scope) return scope;
    }
  return null;
}

builder.addScalarType("DateTime", DateTimeResolver);
builder.addScalarType("JSON", JSONResolver);

builder.queryType({
  description: "Reads need the viewer role (any valid token).",
  authScopes: { viewer: true },
});
builder.mutationType({
  description: "Each mutation is audited: who, what, when, outcome.",
  // Acting needs at least the operator role; admin-only fields ask for more.
  authScopes: { operator: true },
});
builder.subscriptionType({ authScopes: { viewer: true } });
