import { defineConfig } from "vitest/config";

// Two projects: "unit" (pure cores and integration against a real nats-server and the sim over
// HTTP; fast) and "e2e" (whole processes, chaos; slow). `npm test` runs both.
// Tests spawn nats-server and sim processes, so keep to forks and at most two workers on 2 cores.
export default defineConfig({
  test: {
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["{proto,pki,bus,broker,cluster-agent,cli,sim,charts,scripts}/**/*.test.ts"] },
      },
      {
        extends: true,
        test: { name: "e2e", include: ["e2e/**/*.test.ts"], testTimeout: 180_000 },
      },
    ],
  },
});
