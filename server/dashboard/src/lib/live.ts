/** Subscriptions that hand every result to a callback (none is lost between two renders). */
import type { AnyVariables, TypedDocumentNode } from "@urql/core";
import { useEffect, useRef } from "react";
import { useClient } from "urql";

export function useEach<Data, Variables extends AnyVariables>(
  query: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  onData: (data: Data) => void,
  enabled = true,
): void {
  const client = useClient();
  const handler = useRef(onData);
  handler.current = onData;
  const key = JSON.stringify(variables ?? {});
  // biome-ignore lint/correctness/useExhaustiveDependencies: the variables are compared by value (key).
  useEffect(() => {
    if (!enabled) return;
    let sub: { unsubscribe(): void } | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    // A stream that ends in an error (the server restarted, a query refused) is opened again.
    const open = () => {
      sub = client.subscription(query, variables).subscribe((result) => {
        if (result.data) handler.current(result.data);
        if (result.error) {
          sub?.unsubscribe();
          retry = setTimeout(open, 2000);
        }
      });
    };
    open();
    return () => {
      clearTimeout(retry);
      sub?.unsubscribe();
    };
  }, [client, query, key, enabled]);
}
