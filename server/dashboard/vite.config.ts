/**
 * The dashboard's build: a static single-page app in dist/, served by the control plane at `/`.
 * `npm run dev -w @celeriac/dashboard` serves it with live reload, talking to a server on :4000.
 */
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
    rolldownOptions: {
      onwarn(warning, warn) {
        // Libraries marked "use client" for React Server Components; meaningless in an SPA.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: { "/graphql": { target: "http://127.0.0.1:4000", ws: true, changeOrigin: true } },
  },
});
