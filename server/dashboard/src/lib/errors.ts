/** Mutations answer typed errors (the schema's `Error` interface); these tell them apart. */
import type { CombinedError } from "@urql/core";
import type { MutationError } from "../graphql.js";

export interface Problem {
  title: string;
  code?: string;
  details?: string[];
}

export function isMutationError(value: unknown): value is MutationError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { __typename?: unknown }).__typename === "string" &&
    (value as { __typename: string }).__typename.endsWith("Error")
  );
}

export function problemOf(error: MutationError): Problem {
  const details = [
    ...(error.issues ?? []).map((i) =>
      i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message,
    ),
    ...(error.requiredRole ? [`needs the ${error.requiredRole} role`] : []),
  ];
  return { title: error.message, code: error.code, details };
}

export function problemOfTransport(error: CombinedError): Problem {
  if (error.networkError)
    return { title: `Network: ${error.networkError.message}`, code: "NETWORK" };
  const first = error.graphQLErrors[0];
  return {
    title: first?.message ?? error.message,
    code: (first?.extensions?.code as string | undefined) ?? "GRAPHQL",
    details: error.graphQLErrors.slice(1).map((e) => e.message),
  };
}

/**
 * The outcome of a mutation as the page shows it: the success value, or a problem (a typed
 * error, or a transport failure).
 */
export function outcome<T>(
  result: { data?: Record<string, unknown>; error?: CombinedError },
  field: string,
): { ok: T; problem?: undefined } | { ok?: undefined; problem: Problem } {
  if (result.error) return { problem: problemOfTransport(result.error) };
  const value = result.data?.[field];
  if (value === undefined || value === null)
    return { problem: { title: "No answer from the server" } };
  if (isMutationError(value)) return { problem: problemOf(value) };
  return { ok: value as T };
}
