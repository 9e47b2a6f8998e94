/** API tokens and the audit trail: the admin's side. */
import { builder } from "../builder.js";
import { Role } from "../config.js";
import { NotFoundError } from "../errors.js";
import { MUTATION_ERRORS } from "./errors.js";

const RoleEnum = builder.enumType("Role", {
  description:
    "viewer reads; operator also acts on tasks and workers; admin also manages tokens and schedules.",
  values: Role.options,
});

const ApiTokenRef = builder.prismaObject("ApiToken", {
  fields: (t) => ({
    id: t.exposeID("id"),
    name: t.exposeString("name"),
    role: t.field({ type: RoleEnum, resolve: (tok) => tok.role as Role }),
    prefix: t.exposeString("prefix", { description: "The token's first characters." }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
  }),
});

builder.prismaObject("AuditEntry", {
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    at: t.expose("at", { type: "DateTime" }),
    actor: t.exposeString("actor"),
    action: t.exposeString("action"),
    input: t.expose("input", { type: "JSON" }),
    outcome: t.exposeString("outcome", { description: "ok or error." }),
    error: t.exposeString("error", { nullable: true }),
  }),
});

const Me = builder.objectRef<{ name: string; role: Role }>("Me").implement({
  fields: (t) => ({
    name: t.exposeString("name"),
    role: t.field({ type: RoleEnum, resolve: (m) => m.role }),
  }),
});

const CreatedToken = builder
  .objectRef<{ token: string; apiToken: { id: string } }>("CreatedApiToken")
  .implement({
    fields: (t) => ({
      token: t.exposeString("token", { description: "Shown once: keep it now." }),
      apiToken: t.field({ type: ApiTokenRef, resolve: (c) => c.apiToken as never }),
    }),
  });

builder.queryFields((t) => ({
  me: t.field({
    type: Me,
    description: "The caller's token.",
    resolve: (_r, _a, ctx) => ({
      name: ctx.viewer?.name ?? "",
      role: ctx.viewer?.role ?? "viewer",
    }),
  }),
  apiTokens: t.prismaField({
    type: ["ApiToken"],
    authScopes: { admin: true },
    resolve: (_q, _r, _a, ctx) => ctx.services.tokens.list(),
  }),
  auditLog: t.prismaConnection({
    type: "AuditEntry",
    cursor: "id",
    authScopes: { admin: true },
    description: "Every mutation, newest first.",
    args: { action: t.arg.string({ required: false }) },
    resolve: (query, _r, args, ctx) =>
      ctx.db.prisma.auditEntry.findMany({
        ...query,
        where: args.action ? { action: args.action } : {},
        orderBy: { id: "desc" },
      }),
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreatedToken,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS },
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: RoleEnum, required: true }),
    },
    resolve: (_r, args, ctx) =>
      ctx.services.audit.record(
        ctx.viewer,
        "createApiToken",
        { name: args.name, role: args.role },
        async () => {
          const { token, record } = await ctx.services.tokens.create(args.name, args.role);
          return { token, apiToken: record };
        },
      ),
  }),
  revokeApiToken: t.field({
    type: ApiTokenRef,
    authScopes: { admin: true },
    errors: { types: MUTATION_ERRORS, directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) =>
      ctx.services.audit.record(ctx.viewer, "revokeApiToken", { id: args.id }, async () => {
        const revoked = await ctx.services.tokens.revoke(String(args.id));
        if (!revoked) throw new NotFoundError("API token", String(args.id));
        return revoked;
      }),
  }),
}));
