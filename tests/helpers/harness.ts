/**
 * Bun test harness for supervision suites: `harness(...)` makes a supervisor (as makeSupervisor)
 * that is shut down after each test, so a failing test never leaves actor processes behind.
 */
import { afterEach } from "bun:test";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { makeSupervisor } from "./supervision.ts";

let current: Supervisor | undefined;
afterEach(async () => {
  await current?.shutdown();
  current = undefined;
});

export function harness(...args: Parameters<typeof makeSupervisor>): ReturnType<typeof makeSupervisor> {
  const h = makeSupervisor(...args);
  current = h.sup;
  return h;
}

/** The error `p` rejects with; throws if it resolves. */
export async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the promise to reject");
}
