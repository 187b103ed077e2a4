// The controller plugged into the broker shell: `startBroker(config, secrets, { controller: controllerFactory() })`.
// See README.md (broker/) "The controller loop".
import type { ControllerFactory } from "../broker.js";
import { ControllerApi } from "./api.js";
import { Controller, type ControllerOptions } from "./controller.js";

export { Controller, type ControllerOptions } from "./controller.js";
export { ControllerApi } from "./api.js";
export { RecordStore, migrationKey } from "./store.js";
export * from "./convert.js";

/** The factory for `startBroker`: config `controller.*`, overridden by `opts`; `onCreate` receives the controller (tests reach its store and views). */
export function controllerFactory(opts: ControllerOptions = {}, onCreate?: (c: Controller) => void): ControllerFactory {
  return async (rt) => {
    const c = rt.config.controller;
    const controller = await Controller.create(rt, {
      maxInFlight: c.maxInFlight,
      tickMs: c.tickSeconds * 1000,
      republishMs: c.republishSeconds * 1000,
      rpcTimeoutMs: c.rpcTimeoutSeconds * 1000,
      ...opts,
    });
    onCreate?.(controller);
    const api = new ControllerApi(controller, rt.events);
    return {
      plans: api.planHandlers(),
      migrations: api.migrationHandlers(),
      involvement: { activeMigrationsFor: (cluster) => controller.activeMigrationsFor(cluster) },
      stop: () => controller.stop(),
    };
  };
}
