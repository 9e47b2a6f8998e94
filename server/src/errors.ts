/**
 * The errors a caller can expect, each with a `code`. GraphQL fields list the ones they may
 * return, and the schema exposes them as typed results (the `errors` plugin) rather than as
 * loose error messages; anything else is an unexpected error, masked in responses.
 */
import { GraphQLError } from "graphql";

export type ErrorCode = "NOT_FOUND" | "FORBIDDEN" | "INVALID_INPUT" | "UNAVAILABLE";

/**
 * A GraphQLError, so that where a field does not list it as a typed result it still reaches the
 * caller with its message and `extensions.code` instead of being masked as unexpected.
 */
export abstract class ApiError extends GraphQLError {
  abstract readonly code: ErrorCode;

  constructor(message: string, code: ErrorCode) {
    super(message, { extensions: { code } });
  }
}

export class NotFoundError extends ApiError {
  readonly code = "NOT_FOUND";
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(`${what} ${id} not found`, "NOT_FOUND");
    this.name = "NotFoundError";
  }
}

export class ForbiddenError extends ApiError {
  readonly code = "FORBIDDEN";
  constructor(readonly requiredRole: string) {
    super(`this needs the ${requiredRole} role`, "FORBIDDEN");
    this.name = "ForbiddenError";
  }
}

export interface InputIssue {
  path: string[];
  message: string;
}

export class InvalidInputError extends ApiError {
  readonly code = "INVALID_INPUT";
  constructor(
    message: string,
    readonly issues: InputIssue[] = [],
  ) {
    super(message, "INVALID_INPUT");
    this.name = "InvalidInputError";
  }

  /** From a zod (or any Standard Schema) failure. */
  static fromIssues(
    message: string,
    issues: ReadonlyArray<{
      path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
      message: string;
    }>,
  ): InvalidInputError {
    return new InvalidInputError(
      message,
      issues.map((i) => ({
        message: i.message,
        path: (i.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)),
      })),
    );
  }
}

/** The broker or the workers did not answer in time. */
export class UnavailableError extends ApiError {
  readonly code = "UNAVAILABLE";
  constructor(message: string) {
    super(message, "UNAVAILABLE");
    this.name = "UnavailableError";
  }
}
