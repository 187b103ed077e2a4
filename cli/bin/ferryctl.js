#!/usr/bin/env node
// Launcher for `npx ferryctl` / `npm run ferryctl`: registers tsx's ESM loader, then runs the
// TypeScript entry. Plain JS so that it runs before any loader is in place.
import { register } from "tsx/esm/api";

// `npm run ferryctl -- …` runs in the package root; relative paths (-f plan.yaml, --config) are
// meant from where the user typed the command.
if (process.env.npm_lifecycle_event === "ferryctl" && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

register();
await import("../main.ts");
