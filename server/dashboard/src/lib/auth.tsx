/**
 * Signing in with an API token, kept in localStorage; the caller's role decides which controls
 * show. A link with `#token=…` (as dev mode prints) signs in at once.
 */
import { createContext, useContext } from "react";
import type { Role } from "../graphql.js";

const KEY = "celeriac.token";

export function storedToken(): string | null {
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(window.location.hash)?.[1];
  if (fromHash) {
    const token = decodeURIComponent(fromHash);
    localStorage.setItem(KEY, token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return token;
  }
  return localStorage.getItem(KEY);
}

export function saveToken(token: string | null): void {
  if (token) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export interface Session {
  name: string;
  role: Role;
  signOut(): void;
}

export const SessionContext = createContext<Session>({
  name: "",
  role: "viewer",
  signOut: () => {},
});

export const useSession = () => useContext(SessionContext);

/** Whether the signed-in role includes `needed` (roles nest: admin ⊃ operator ⊃ viewer). */
export function useCan(needed: Role): boolean {
  return RANK[useSession().role] >= RANK[needed];
}
