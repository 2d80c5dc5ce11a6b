/**
 * The launcher seam: how an actor process is started. The supervisor hands a launcher a request
 * (which host module, which environment: the spawn spec in it carries the coordinator's address
 * and the per-spawn token) and gets a process handle back; a death is still a closed connection,
 * a missed ping or a deadline, wherever the process runs. `localLauncher` starts a child of this
 * runtime in its own process group; `slurmLauncher` (slurm_launcher.ts) starts it with `srun`,
 * `kubernetesLauncher` (kubernetes_launcher.ts) as a pod; cluster.ts picks one from the config.
 *
 * A launch that throws (EMFILE, EAGAIN, ENOMEM, a missing binary) is a failed start: the
 * supervisor records a `death` with cause `spawn` and retries it with backoff, counted against
 * max_restarts and the restart intensity; when those run out the actor fails with an
 * ActorSpawnError naming the error.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ faultTolerance, roles, launcher: localLauncher });
 * ```
 */
import { runtime, type ExitStatus } from "../adapter/index.ts";
import { procSnapshot } from "./forensics.ts";

export interface LaunchRequest {
  actor: string;
  role: string;
  rank: number;
  incarnation: number;
  /** The actor host module (runtime/core/host/host.ts), run by the coordinator's runtime binary. */
  module: string;
  /** The actor's whole environment, secrets already filtered out, REVENANT_ACTOR_SPEC included. */
  env: Record<string, string>;
}

/** A started actor process, wherever it runs. The local spawn's ChildProcess is one. */
export interface ActorProcess {
  /** A local process id where there is one (the local spawn, the `srun` process); not for a remote pod. */
  readonly pid: number | undefined;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves once, when the process has ended. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal; a process that already ended is ignored. */
  kill(signal?: NodeJS.Signals): void;
  /** The machine it runs on, once the launcher knows it (a Slurm node, a Kubernetes node); undefined for a local child. */
  readonly node?: string;
}

/** Where a launcher placed an actor: told to `onPlaced` hooks, recorded as a `placed` event. */
export interface Placement {
  actor: string;
  role: string;
  rank: number;
  incarnation: number;
  /** The node (host name) the actor runs on. */
  node: string;
  /** How the launcher refers to it: a Slurm step `<job>.<step>`, a pod name. */
  handle?: string;
}

export interface Launcher {
  readonly name: string;
  /** Starts an actor process and returns at once; throws if it cannot be started. */
  launch(request: LaunchRequest): ActorProcess;
  /**
   * What can be said about a process about to be killed as hung (recorded as forensics in its
   * `death` event). Called synchronously, just before the SIGKILL; best effort, must not throw.
   */
  inspect?(process: ActorProcess): Record<string, unknown>;
}

/**
 * The command line that runs the actor host module with this runtime's binary, for launchers that
 * start it elsewhere (srun, a pod): the same binary path and module path must exist there, as on
 * a cluster's shared file system or in the coordinator's own container image.
 */
export function hostCommand(module: string): string[] {
  const deno = runtime.name === "deno";
  return deno ? [process.execPath, "run", "-A", "--no-prompt", module] : [process.execPath, module];
}

/**
 * A child of this runtime on this machine, in a new session and process group: a terminal's
 * Ctrl-C reaches the coordinator only, which then stops its actors in order. Actors still never
 * outlive the coordinator: they exit when its connection drops or their parent process is gone,
 * and the kernel kills them when it dies (`dieWithParent`), even while they are stopped.
 */
export const localLauncher: Launcher = {
  name: "local",
  launch: (r) => runtime.spawn({ module: r.module, env: r.env, newProcessGroup: true, dieWithParent: true }),
  inspect: (p) => (p.pid === undefined ? {} : procSnapshot(p.pid)),
};
