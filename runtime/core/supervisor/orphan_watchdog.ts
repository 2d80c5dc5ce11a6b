/**
 * Runs in a worker thread of every actor host: once the process that started the actor is gone
 * (its parent pid changes), the actor SIGKILLs itself. The host also exits when the coordinator's
 * connection drops, but that needs the host's JS thread; this one does not, so an actor stuck in a
 * loop or a blocking native call still never outlives its coordinator. It matters because local
 * actors run in their own process group: a terminal's signals (Ctrl-C, a closed terminal's
 * SIGHUP) no longer reach them.
 */

/** What the host posts to start the watch. */
export interface WatchdogStart {
  /** The parent pid the host saw at startup (the coordinator, for the local launcher). */
  parent: number;
  intervalMs: number;
}

function watch({ parent, intervalMs }: WatchdogStart): void {
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, "SIGKILL");
  }, intervalMs);
}

// A worker's global scope, typed here so this file also type-checks outside a worker lib.
const scope = globalThis as unknown as { onmessage: ((e: { data: WatchdogStart }) => void) | null };
scope.onmessage = (e) => watch(e.data);
