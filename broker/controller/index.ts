// The controller plugged into the broker shell: `startBroker(config, secrets, { controller: controllerFactory() })`.
// See README.md (broker/) "The controller loop".
import type { ControllerFactory } from "../broker.js";
import { ControllerApi } from "./api.js";
import { Controller, type ControllerOptions } from "./controller.js";

export { Controller, type ControllerOptions } from "./controller.js";
export { ControllerApi } from "./api.js";
export { RecordStore, migrationKey } from "./store.js";
export * from "./convert.js";

/** The factory for `startBroker`; `onCreate` receives the controller (tests reach its clock and store). */
export function controllerFactory(opts: ControllerOptions = {}, onCreate?: (c: Controller) => void): ControllerFactory {
  return async (rt) => {
    const controller = await Controller.create(rt, opts);
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
