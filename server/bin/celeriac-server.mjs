#!/usr/bin/env node
// The server runs from TypeScript sources through tsx, like the SDK's CLI.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
