#!/usr/bin/env node
// The CLI runs from TypeScript sources, and loads users' `.ts` app modules, through tsx.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
