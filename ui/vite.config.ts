import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The window loads the built files from inside the app (Tauri's custom protocol): no dev
// server, no remote content. Tests run in jsdom.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: { target: "es2022", sourcemap: false, outDir: "dist", emptyOutDir: true },
  test: { environment: "jsdom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
