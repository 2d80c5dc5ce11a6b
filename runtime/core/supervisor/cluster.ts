/**
 * From the `cluster:` section of the configuration to the Supervisor's `transport` and
 * `launcher` options. The defaults (local launcher, Unix socket) give exactly the options a
 * Supervisor has without them.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ faultTolerance, roles, ...clusterOptions(config.cluster, { owner: job.id, events }) });
 * ```
 */
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Cluster } from "../../../config/schema.ts";
import { parseHostPort, type Transport } from "../ipc/transport.ts";
import type { EventLog } from "../metrics/events.ts";
import { kubernetesLauncher } from "./kubernetes_launcher.ts";
import { localLauncher, type Launcher, type Placement } from "./launcher.ts";
import { slurmLauncher } from "./slurm_launcher.ts";

/** Where a pod finds its service account (token, CA, namespace). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const WILDCARDS = new Set(["0.0.0.0", "::"]);

export interface ClusterContext {
  /** Names what this coordinator starts (pod names and labels): the job id. */
  owner: string;
  /** Where `placed` events go (the node of each incarnation). */
  events?: EventLog;
  /** The coordinator's environment; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The transport the config asks for; `auto` is the Unix socket for local actors and TCP otherwise. */
export function clusterTransport(c: Cluster): Transport {
  const tcp = c.transport === "tcp" || (c.transport === "auto" && c.launcher !== "local");
  if (!tcp) return { kind: "unix" };
  const listen = parseHostPort(c.listen || (c.launcher === "local" ? "127.0.0.1:0" : "0.0.0.0:0"));
  // Actors elsewhere cannot use the loopback address a wildcard would otherwise be advertised as.
  const advertise = c.advertise || (WILDCARDS.has(listen.host) && c.launcher !== "local" ? hostname() : undefined);
  const tls = c.tls_cert ? { certPath: c.tls_cert, keyPath: c.tls_key, ...(c.tls_ca && { caPath: c.tls_ca }) } : undefined;
  return { kind: "tcp", ...listen, ...(advertise && { advertise }), ...(tls && { tls }) };
}

/** Records where each incarnation runs in the event log. */
function placedEvents(events: EventLog | undefined): ((p: Placement) => void) | undefined {
  if (!events) return undefined;
  return (p) => events.emit({ type: "placed", actor: p.actor, role: p.role, incarnation: p.incarnation, node: p.node, handle: p.handle });
}

/** The launcher the config asks for. */
export function clusterLauncher(c: Cluster, ctx: ClusterContext): Launcher {
  const onPlaced = placedEvents(ctx.events);
  if (c.launcher === "slurm") {
    const s = c.slurm;
    const place = Object.fromEntries(Object.entries(s.place).filter(([, node]) => node !== ""));
    return slurmLauncher({ partition: s.partition || undefined, nodes: s.nodes, place, srunArgs: s.srun_args, gpus: c.gpus, env: ctx.env, onPlaced });
  }
  if (c.launcher === "kubernetes") return kubernetesFromConfig(c, ctx, onPlaced);
  return localLauncher;
}

function readServiceAccount(file: string): string | undefined {
  const path = `${SERVICE_ACCOUNT_DIR}/${file}`;
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}

/** In a pod, the API server, token and namespace default to the pod's own service account. */
function kubernetesFromConfig(c: Cluster, ctx: ClusterContext, onPlaced?: (p: Placement) => void): Launcher {
  const k = c.kubernetes;
  const env = ctx.env ?? process.env;
  const inCluster = env.KUBERNETES_SERVICE_HOST ? `https://${env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT ?? "443"}` : "";
  const apiServer = k.api_server || inCluster;
  if (!apiServer) throw new Error("cluster.kubernetes.api_server is empty and this is not a pod (no KUBERNETES_SERVICE_HOST): set the API server's URL");
  const tokenFile = k.token_file || `${SERVICE_ACCOUNT_DIR}/token`;
  if (!existsSync(tokenFile)) throw new Error(`cluster.kubernetes.token_file: ${tokenFile} does not exist; set it to a file holding a bearer token`);
  const nodeSelector = Object.fromEntries(k.node_selector.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return kubernetesLauncher({
    apiServer, token: () => readFileSync(tokenFile, "utf8"), namespace: k.namespace || readServiceAccount("namespace") || "default",
    image: k.image, owner: ctx.owner, serviceAccount: k.service_account || undefined, nodeSelector, gpus: c.gpus,
    cpu: k.cpu || undefined, memory: k.memory || undefined, onPlaced,
  });
}

/** The Supervisor options for the config's `cluster:` section. */
export function clusterOptions(c: Cluster, ctx: ClusterContext): { transport: Transport; launcher: Launcher } {
  return { transport: clusterTransport(c), launcher: clusterLauncher(c, ctx) };
}
