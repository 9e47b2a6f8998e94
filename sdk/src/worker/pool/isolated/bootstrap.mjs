// Entry of a pool child (thread or process): it runs TypeScript sources, and users' `.ts` app
// modules, through tsx, like the CLI.
import { register } from "tsx/esm/api";

register();
await import("./child.ts");
