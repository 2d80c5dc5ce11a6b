/**
 * The Kubernetes launcher: each actor incarnation is a pod, created through the API server with
 * `fetch` and a bearer token (the coordinator pod's service account, in a cluster).
 *
 * - The spawn spec (with its per-spawn token) goes into a Secret of its own, which the pod reads
 *   as REVENANT_ACTOR_SPEC (`secretKeyRef`): pod specs are readable by more principals than
 *   secrets, and whoever reads the token first can connect in the actor's place. The token is
 *   used once (the first good hello consumes it); the Secret is deleted when the pod ends.
 * - A pod gets the image's own environment, the actor's REVENANT_* variables and the names in
 *   `passEnv`; not the coordinator's whole environment (its PATH and HOME are another machine's).
 * - `restartPolicy: Never`: restarts are the supervisor's, with a new incarnation and token.
 * - The pod's state is polled: Running names its node (ActorProcess.node, `onPlaced`) and starts
 *   following its log (the actor's output); Succeeded or Failed is the exit, with the
 *   container's exit code (137 read as SIGKILL). A pod deleted by someone else is a SIGKILL.
 * - `kill`: SIGKILL deletes the pod at once (grace 0), SIGTERM with the pod's grace period (the
 *   kubelet sends SIGTERM, then SIGKILL). Other signals (SIGSTOP, SIGCONT) have no pod
 *   equivalent and are ignored: a hung actor is still found by its pings and deleted.
 *
 * @example
 * ```ts
 * const launcher = kubernetesLauncher({ apiServer: "https://10.0.0.1:443", token: () => readFileSync(TOKEN, "utf8"),
 *   namespace: "revenant", image: "ghcr.io/acme/revenant:1", owner: "job-1" });
 * podManifest(request, options).pod.spec.containers[0].image; // "ghcr.io/acme/revenant:1"
 * ```
 */
import type { ExitStatus } from "../adapter/index.ts";
import { unwrapStatus } from "./command_process.ts";
import { hostCommand, type ActorProcess, type LaunchRequest, type Launcher, type Placement } from "./launcher.ts";

export interface KubernetesLauncherOptions {
  /** API server base URL, e.g. `https://kubernetes.default.svc`. */
  apiServer: string;
  /** Bearer token, or a function reading it (service account tokens are rotated on disk). */
  token: string | (() => string);
  namespace: string;
  /** Image of actor pods: the coordinator's own, so the host module and roles sit at the same paths. */
  image: string;
  /** Names this coordinator's pods (label `revenant/owner`, part of each name): a job id, say. */
  owner: string;
  serviceAccount?: string;
  /** Labels the node must carry. */
  nodeSelector?: Readonly<Record<string, string>>;
  /** GPUs per actor, by role (`nvidia.com/gpu`). */
  gpus?: Readonly<Record<string, number>>;
  /** CPU and memory request and limit of each pod (Kubernetes quantities). */
  cpu?: string;
  memory?: string;
  /** Variables of the actor's environment a pod gets besides REVENANT_*. */
  passEnv?: readonly string[];
  /** How often each pod's state is read; default 1000 ms. */
  pollMs?: number;
  onPlaced?(placement: Placement): void;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
}

/** An object as the Kubernetes API takes it (the fields this launcher sets). */
export type Manifest = Record<string, any>;

const SPEC_KEY = "REVENANT_ACTOR_SPEC";
const DEFAULT_POLL_MS = 1000;
/** Exit code of a container that ended without one (shown when the API gives none). */
const NO_EXIT_CODE = 255;

/** A DNS-1123 label fragment: lowercase letters, digits and `-`. */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "x";
}

/** The pod (and its Secret's) name: owner, actor and incarnation, within 63 characters. */
export function podName(owner: string, actor: string, incarnation: number): string {
  const tail = `-${slug(actor)}-${incarnation}`;
  return `revenant-${slug(owner).slice(0, Math.max(1, 63 - 9 - tail.length))}${tail}`.slice(0, 63).replace(/-+$/, "");
}

function resources(o: KubernetesLauncherOptions, role: string): Manifest {
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (o.cpu) limits.cpu = requests.cpu = o.cpu;
  if (o.memory) limits.memory = requests.memory = o.memory;
  const gpus = o.gpus?.[role] ?? 0;
  if (gpus > 0) limits["nvidia.com/gpu"] = String(gpus); // extended resources: limits only
  return { ...(Object.keys(limits).length && { limits }), ...(Object.keys(requests).length && { requests }) };
}

/** The pod's environment: REVENANT_* and `passEnv` from the actor's, the spec from the Secret. */
function podEnv(r: LaunchRequest, o: KubernetesLauncherOptions, secret: string): Manifest[] {
  const names = Object.keys(r.env).filter((n) => n !== SPEC_KEY && (n.startsWith("REVENANT_") || o.passEnv?.includes(n))).sort();
  return [
    ...names.map((name) => ({ name, value: r.env[name] })),
    { name: SPEC_KEY, valueFrom: { secretKeyRef: { name: secret, key: SPEC_KEY } } },
  ];
}

/**
 * The Secret and the Pod for one incarnation (pure: the same request gives the same manifests).
 * Throws when the request has no spawn spec.
 */
export function podManifest(r: LaunchRequest, o: KubernetesLauncherOptions): { name: string; secret: Manifest; pod: Manifest } {
  const spec = r.env[SPEC_KEY];
  if (!spec) throw new Error(`the launch request for ${r.actor} has no ${SPEC_KEY}: the pod would not know its coordinator`);
  const name = podName(o.owner, r.actor, r.incarnation);
  const labels = {
    "app.kubernetes.io/name": "revenant-actor", "revenant/owner": slug(o.owner).slice(0, 63), "revenant/actor": slug(r.actor).slice(0, 63),
    "revenant/role": slug(r.role), "revenant/incarnation": String(r.incarnation),
  };
  const secret = { apiVersion: "v1", kind: "Secret", metadata: { name, labels }, type: "Opaque", stringData: { [SPEC_KEY]: spec } };
  const container = { name: "actor", image: o.image, command: hostCommand(r.module), env: podEnv(r, o, name), resources: resources(o, r.role) };
  const pod = {
    apiVersion: "v1", kind: "Pod", metadata: { name, labels },
    spec: {
      restartPolicy: "Never",
      // Actors never call the API server: no token in their pods.
      automountServiceAccountToken: false,
      ...(o.serviceAccount && { serviceAccountName: o.serviceAccount }),
      ...(o.nodeSelector && Object.keys(o.nodeSelector).length && { nodeSelector: { ...o.nodeSelector } }),
      containers: [container],
    },
  };
  return { name, secret, pod };
}

/** A request to the API server failed; the message names the method, path, status and reason. */
export class KubernetesApiError extends Error {
  override name = "KubernetesApiError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The API server client: JSON in and out, a bearer token, errors that say what was refused. */
class Api {
  constructor(private readonly o: KubernetesLauncherOptions) {}

  path(kind: "pods" | "secrets", name?: string, sub?: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.o.namespace)}/${kind}${name ? `/${encodeURIComponent(name)}` : ""}${sub ?? ""}`;
  }

  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const token = typeof this.o.token === "function" ? this.o.token() : this.o.token;
    const res = await (this.o.fetch ?? fetch)(`${this.o.apiServer.replace(/\/+$/, "")}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token.trim()}`, Accept: "application/json", ...(body !== undefined && { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.ok || (method === "DELETE" && res.status === 404)) return res;
    const text = await res.text().catch(() => "");
    let reason = text.slice(0, 300);
    try {
      reason = (JSON.parse(text) as { message?: string }).message ?? reason;
    } catch {
      // not a Status object: keep the text
    }
    throw new KubernetesApiError(res.status, `${method} ${path}: the API server answered ${res.status}: ${reason}`);
  }
}

/** A writable side of a ReadableStream: what the launcher says, and the pod's log. */
function pushStream(): { stream: ReadableStream<Uint8Array>; push(bytes: Uint8Array): void; close(): void } {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return {
    stream,
    push: (bytes) => open && controller.enqueue(bytes),
    close: () => {
      if (open) controller.close();
      open = false;
    },
  };
}

/** One actor incarnation's pod. */
class PodProcess implements ActorProcess {
  readonly pid = undefined;
  readonly name: string;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<ExitStatus>;
  node: string | undefined;
  phase = "Creating";
  /** The last pod status read, for `inspect`. */
  status: Manifest | undefined;
  private readonly out = pushStream();
  private readonly err = pushStream();
  private resolveExit!: (s: ExitStatus) => void;
  private ended = false;
  private killedWith: NodeJS.Signals | undefined;
  private created: Promise<void>;
  private following = false;

  constructor(private readonly api: Api, manifests: ReturnType<typeof podManifest>, private readonly request: LaunchRequest, private readonly o: KubernetesLauncherOptions) {
    this.name = manifests.name;
    this.stdout = this.out.stream;
    this.stderr = this.err.stream;
    this.exited = new Promise((r) => (this.resolveExit = r));
    const { secret, pod, name } = manifests;
    this.created = this.create(secret, pod);
    void this.created.then(() => this.watch(), (e: Error) => this.end({ code: 1, signal: null }, `kubernetes launcher: cannot create pod ${name}: ${e.message}`));
  }

  private async create(secret: Manifest, pod: Manifest): Promise<void> {
    await this.api.request("POST", this.api.path("secrets"), secret);
    await this.api.request("POST", this.api.path("pods"), pod);
    this.phase = "Pending";
  }

  private say(line: string): void {
    this.err.push(new TextEncoder().encode(`${line}\n`));
  }

  /** Polls the pod until it ends (or is gone). */
  private async watch(): Promise<void> {
    const pollMs = this.o.pollMs ?? DEFAULT_POLL_MS;
    while (!this.ended) {
      try {
        const res = await this.api.request("GET", this.api.path("pods", this.name));
        this.observe((await res.json()) as Manifest);
      } catch (e) {
        if (e instanceof KubernetesApiError && e.status === 404) {
          return this.end({ code: null, signal: this.killedWith ?? "SIGKILL" }, this.killedWith ? undefined : `kubernetes launcher: pod ${this.name} was deleted`);
        }
        this.say(`kubernetes launcher: cannot read pod ${this.name}: ${(e as Error).message}`);
      }
      if (!this.ended) await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private observe(pod: Manifest): void {
    this.status = pod.status;
    this.phase = pod.status?.phase ?? this.phase;
    const nodeName: string | undefined = pod.spec?.nodeName;
    if (nodeName && this.node === undefined) {
      this.node = nodeName;
      const { actor, role, rank, incarnation } = this.request;
      this.o.onPlaced?.({ actor, role, rank, incarnation, node: nodeName, handle: `pod/${this.name}` });
    }
    if (this.phase === "Running" || this.phase === "Succeeded" || this.phase === "Failed") void this.followLog();
    if (this.phase === "Succeeded" || this.phase === "Failed") {
      const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
      const status = t ? unwrapStatus(t.exitCode ?? NO_EXIT_CODE, null) : { code: NO_EXIT_CODE, signal: null };
      this.end(status, t?.reason && t.reason !== "Completed" ? `kubernetes launcher: pod ${this.name} ended: ${t.reason}${t.message ? ` (${t.message})` : ""}` : undefined);
    }
  }

  /** Streams the container's log into stdout (once). */
  private async followLog(): Promise<void> {
    if (this.following) return;
    this.following = true;
    try {
      const res = await this.api.request("GET", this.api.path("pods", this.name, "/log?container=actor&follow=true"));
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) this.out.push(chunk);
    } catch (e) {
      if (!this.ended) this.say(`kubernetes launcher: cannot follow the log of pod ${this.name}: ${(e as Error).message}`);
    }
  }

  private end(status: ExitStatus, why?: string): void {
    if (this.ended) return;
    if (why) this.say(why);
    this.ended = true;
    this.out.close();
    this.err.close();
    this.resolveExit(status);
    // The token in the Secret is spent or useless now; the pod goes too, unless it failed (kept to debug).
    void this.api.request("DELETE", this.api.path("secrets", this.name)).catch(() => {});
    if (status.code === 0 || this.killedWith) void this.api.request("DELETE", this.api.path("pods", this.name)).catch(() => {});
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.ended || (signal !== "SIGKILL" && signal !== "SIGTERM")) return;
    this.killedWith = signal;
    const grace = signal === "SIGKILL" ? "?gracePeriodSeconds=0" : "";
    void this.created.then(() => this.api.request("DELETE", `${this.api.path("pods", this.name)}${grace}`))
      .catch((e: Error) => this.say(`kubernetes launcher: cannot delete pod ${this.name}: ${e.message}`));
  }
}

class KubernetesLauncher implements Launcher {
  readonly name = "kubernetes";
  private readonly api: Api;

  constructor(private readonly o: KubernetesLauncherOptions) {
    this.api = new Api(o);
  }

  launch(r: LaunchRequest): ActorProcess {
    // Built here, so an unusable request throws now, as a failed start.
    return new PodProcess(this.api, podManifest(r, this.o), r, this.o);
  }

  inspect(p: ActorProcess): Record<string, unknown> {
    if (!(p instanceof PodProcess)) return {};
    return { launcher: "kubernetes", pod: p.name, namespace: this.o.namespace, node: p.node, phase: p.phase, status: p.status };
  }
}

/** A launcher that starts each actor as a pod (see the header). */
export function kubernetesLauncher(options: KubernetesLauncherOptions): Launcher {
  for (const key of ["apiServer", "namespace", "image", "owner"] as const) {
    if (!options[key]) throw new Error(`kubernetesLauncher: ${key} is required (got ${JSON.stringify(options[key])})`);
  }
  if (!/^https?:\/\//.test(options.apiServer)) throw new Error(`kubernetesLauncher: apiServer must be an http(s) URL, got ${JSON.stringify(options.apiServer)}`);
  return new KubernetesLauncher(options);
}
