/** The typed errors mutations return, all implementing `Error { message code }`. */
import { builder } from "../builder.js";
import {
  ApiError,
  ForbiddenError,
  type InputIssue,
  InvalidInputError,
  NotFoundError,
  UnavailableError,
} from "../errors.js";

export const ErrorInterface = builder.interfaceRef<ApiError>("Error").implement({
  description: "An expected failure; `code` tells which.",
  fields: (t) => ({
    message: t.exposeString("message"),
    code: t.exposeString("code"),
  }),
});

builder.objectType(NotFoundError, {
  name: "NotFoundError",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof NotFoundError,
  fields: (t) => ({ what: t.exposeString("what"), id: t.exposeString("id") }),
});

builder.objectType(ForbiddenError, {
  name: "ForbiddenError",
  description: "The caller's token does not have the role this needs.",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof ForbiddenError,
  fields: (t) => ({ requiredRole: t.exposeString("requiredRole") }),
});

const InputIssueRef = builder.objectRef<InputIssue>("InputIssue").implement({
  fields: (t) => ({
    path: t.exposeStringList("path"),
    message: t.exposeString("message"),
  }),
});

builder.objectType(InvalidInputError, {
  name: "InvalidInputError",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof InvalidInputError,
  fields: (t) => ({ issues: t.field({ type: [InputIssueRef], resolve: (e) => e.issues }) }),
});

builder.objectType(UnavailableError, {
  name: "UnavailableError",
  interfaces: [ErrorInterface],
  isTypeOf: (e) => e instanceof UnavailableError,
  fields: () => ({}),
});

/** The errors every mutation may return. */
export const MUTATION_ERRORS = [ForbiddenError, InvalidInputError, NotFoundError, UnavailableError];

export { ApiError };
