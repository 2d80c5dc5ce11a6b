/**
 * The Kubernetes launcher: the Pod and Secret it builds from a launch request (pure), and actors
 * supervised through a small fake API server on loopback that runs each pod as a local process
 * (no cluster needed): pods start, connect back over TCP, serve calls; a killed one is deleted
 * and replaced by a new pod with its state restored; a refused request names the API's answer.
 * Then deploy/kubernetes/: the manifests hold together with the config they pass.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { resolveConfig } from "../../config/index.ts";
import { killActor } from "../../runtime/core/chaos.ts";
import { clusterTransport } from "../../runtime/core/supervisor/cluster.ts";
import { hostCommand, type LaunchRequest } from "../../runtime/core/supervisor/launcher.ts";
import { kubernetesLauncher, podManifest, podName, type KubernetesLauncherOptions, type Manifest } from "../../runtime/core/supervisor/kubernetes_launcher.ts";
import { caught, harness } from "../helpers/harness.ts";
import { waitFor } from "../helpers/supervision.ts";

const TOKEN = "test-token";
const NODE = "kind-worker";

const request = (over: Partial<LaunchRequest> = {}): LaunchRequest => ({
  actor: "actor_rollout/1", role: "actor_rollout", rank: 1, incarnation: 3, module: "/app/runtime/core/host/host.ts",
  env: { PATH: "/usr/bin", HOME: "/root", REVENANT_NUM_THREADS: "4", NCCL_DEBUG: "INFO", REVENANT_ACTOR_SPEC: '{"token":"s3cret"}' },
  ...over,
});
const options = (over: Partial<KubernetesLauncherOptions> = {}): KubernetesLauncherOptions => ({
  apiServer: "https://kube.test", token: TOKEN, namespace: "ml", image: "ghcr.io/acme/revenant:1", owner: "Job_42", ...over,
});

describe("the pod of a launch request", () => {
  test("image, command, environment (spec from its Secret), resources, node selector, no restarts, no API token", () => {
    const { name, pod, secret } = podManifest(request(), options({ gpus: { actor_rollout: 2 }, cpu: "4", memory: "16Gi", nodeSelector: { "nvidia.com/gpu.present": "true" }, passEnv: ["NCCL_DEBUG"], serviceAccount: "actors" }));
    expect(name).toBe("revenant-job-42-actor-rollout-1-3");
    expect(pod.metadata).toEqual({
      name, labels: { "app.kubernetes.io/name": "revenant-actor", "revenant/owner": "job-42", "revenant/actor": "actor-rollout-1", "revenant/role": "actor-rollout", "revenant/incarnation": "3" },
    });
    expect(pod.spec).toEqual({
      restartPolicy: "Never", automountServiceAccountToken: false, serviceAccountName: "actors", nodeSelector: { "nvidia.com/gpu.present": "true" },
      containers: [{
        name: "actor", image: "ghcr.io/acme/revenant:1", command: hostCommand("/app/runtime/core/host/host.ts"),
        env: [
          { name: "NCCL_DEBUG", value: "INFO" }, { name: "REVENANT_NUM_THREADS", value: "4" },
          { name: "REVENANT_ACTOR_SPEC", valueFrom: { secretKeyRef: { name, key: "REVENANT_ACTOR_SPEC" } } },
        ],
        resources: { limits: { cpu: "4", memory: "16Gi", "nvidia.com/gpu": "2" }, requests: { cpu: "4", memory: "16Gi" } },
      }],
    });
    expect(JSON.stringify(pod)).not.toContain("s3cret"); // the token is in the Secret only
    expect(secret).toMatchObject({ kind: "Secret", metadata: { name }, stringData: { REVENANT_ACTOR_SPEC: '{"token":"s3cret"}' } });
  });

  test("no GPUs, CPU or memory: no resources; names stay within 63 characters", () => {
    expect(podManifest(request(), options()).pod.spec.containers[0].resources).toEqual({});
    const long = podName("a".repeat(80), "critic/".repeat(10), 12);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  test("a request without a spawn spec, and missing options, are refused saying what is missing", () => {
    expect(() => podManifest(request({ env: {} }), options())).toThrow("the launch request for actor_rollout/1 has no REVENANT_ACTOR_SPEC");
    expect(() => kubernetesLauncher(options({ image: "" }))).toThrow(`kubernetesLauncher: image is required (got "")`);
    expect(() => kubernetesLauncher(options({ apiServer: "kube:6443" }))).toThrow("apiServer must be an http(s) URL");
  });
});

interface FakePod {
  manifest: Manifest;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  exitCode?: number;
  proc?: ChildProcess;
  output: Uint8Array[];
  readers: Set<ReadableStreamDefaultController<Uint8Array>>;
}

/** The API server's pod and secret routes, with each pod run as a local process (its "node": kind-worker). */
class FakeKube {
  readonly pods = new Map<string, FakePod>();
  readonly secrets = new Map<string, Manifest>();
  readonly requests: string[] = [];
  readonly server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.handle(req) });
  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) return Response.json({ kind: "Status", message: "Unauthorized" }, { status: 401 });
    const m = /^\/api\/v1\/namespaces\/ml\/(pods|secrets)(?:\/([^/]+))?(\/log)?$/.exec(url.pathname);
    if (!m) return Response.json({ message: "not found" }, { status: 404 });
    const [, kind, name, log] = m;
    if (req.method === "POST") return this.create(kind!, (await req.json()) as Manifest);
    if (kind === "secrets") return req.method === "DELETE" && this.secrets.delete(name!) ? Response.json({}) : Response.json({ message: "gone" }, { status: 404 });
    const pod = this.pods.get(name!);
    if (!pod) return Response.json({ message: `pods "${name}" not found` }, { status: 404 });
    if (log) return this.follow(pod);
    if (req.method === "DELETE") {
      pod.proc?.kill(url.searchParams.get("gracePeriodSeconds") === "0" ? "SIGKILL" : "SIGTERM");
      pod.proc?.once("exit", () => this.pods.delete(name!));
      return Response.json(pod.manifest);
    }
    return Response.json({ ...pod.manifest, spec: { ...pod.manifest.spec, nodeName: NODE }, status: this.status(pod) });
  }

  private status(pod: FakePod): Manifest {
    const terminated = pod.exitCode === undefined ? undefined : { exitCode: pod.exitCode, reason: pod.exitCode === 0 ? "Completed" : "Error" };
    return { phase: pod.phase, containerStatuses: [{ name: "actor", state: terminated ? { terminated } : { running: {} } }] };
  }

  private create(kind: string, manifest: Manifest): Response {
    const name = manifest.metadata.name as string;
    if (kind === "secrets") this.secrets.set(name, manifest);
    else this.run(name, manifest);
    return Response.json(manifest, { status: 201 });
  }

  /** The kubelet's part: resolve the environment (secretKeyRef included) and run the container's command. */
  private run(name: string, manifest: Manifest): void {
    const container = manifest.spec.containers[0];
    const env: Record<string, string> = { PATH: process.env.PATH! };
    for (const e of container.env) env[e.name] = e.value ?? this.secrets.get(e.valueFrom.secretKeyRef.name)!.stringData[e.valueFrom.secretKeyRef.key];
    const pod: FakePod = { manifest, phase: "Running", output: [], readers: new Set() };
    this.pods.set(name, pod);
    const proc = spawn(container.command[0], container.command.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    pod.proc = proc;
    const take = (chunk: Uint8Array) => {
      pod.output.push(chunk);
      for (const r of pod.readers) r.enqueue(chunk);
    };
    proc.stdout!.on("data", take);
    proc.stderr!.on("data", take);
    proc.once("exit", (code, signal) => {
      pod.exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : 15);
      pod.phase = pod.exitCode === 0 ? "Succeeded" : "Failed";
      for (const r of pod.readers) r.close();
    });
  }

  private follow(pod: FakePod): Response {
    return new Response(new ReadableStream<Uint8Array>({
      start: (controller) => {
        for (const chunk of pod.output) controller.enqueue(chunk);
        if (pod.exitCode !== undefined) controller.close();
        else pod.readers.add(controller);
      },
    }));
  }

  stop(): void {
    for (const pod of this.pods.values()) pod.proc?.kill("SIGKILL");
    void this.server.stop(true);
  }
}

describe("actors as pods (fake API server)", () => {
  const kube = new FakeKube();
  afterAll(() => kube.stop());
  const TCP = { kind: "tcp", host: "127.0.0.1", port: 0 } as const;

  test("pods start, connect back and serve; a killed one is deleted and replaced by a new pod with its state restored", async () => {
    const { sup, output } = harness({ max_restarts: -1, max_task_retries: -1 }, {
      transport: TCP,
      launcher: kubernetesLauncher(options({ apiServer: kube.url, pollMs: 20, onPlaced: (p) => sup.events.emit({ type: "placed", ...p }) })),
    });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    expect(await actor.call("add", [4])).toBe(4);
    expect(sup.events.events.filter((e) => e.type === "placed").map((e) => [e.incarnation, e.node, e.handle])).toEqual([[1, NODE, "pod/revenant-job-42-c-1"]]);
    expect(kube.requests.slice(0, 2)).toEqual(["POST /api/v1/namespaces/ml/secrets", "POST /api/v1/namespaces/ml/pods"]);

    killActor(actor);
    await waitFor(() => sup.events.count("restart") === 1, "the restart");
    expect(kube.requests).toContain("DELETE /api/v1/namespaces/ml/pods/revenant-job-42-c-1?gracePeriodSeconds=0");
    expect(sup.events.events.find((e) => e.type === "death")).toMatchObject({ incarnation: 1, signal: "SIGKILL" });
    expect(await actor.call("add", [1])).toBe(5);
    expect(kube.pods.has("revenant-job-42-c-2")).toBe(true);
    // The first incarnation's Secret went with its pod; its token is spent anyway.
    await waitFor(() => !kube.secrets.has("revenant-job-42-c-1"), "the first Secret to be deleted");
    expect(output.some((l) => l.includes("srun"))).toBe(false);
  });

  test("a request the API server refuses fails the start, with the API's answer in the actor's last lines", async () => {
    const { sup } = harness({ max_restarts: 0 }, { transport: TCP, launcher: kubernetesLauncher(options({ apiServer: kube.url, token: "wrong", pollMs: 20 })) });
    const err = await caught(sup.start([{ id: "c", role: "counter" }]));
    expect(err.message).toContain("POST /api/v1/namespaces/ml/secrets: the API server answered 401: Unauthorized");
  });
});

// ---- deploy/kubernetes ---------------------------------------------------------------------

const K8S = resolve(import.meta.dir, "../../deploy/kubernetes");
const docs = readdirSync(K8S).filter((f) => f.endsWith(".yaml")).flatMap((f) =>
  parseAllDocuments(readFileSync(join(K8S, f), "utf8")).map((d) => ({ file: f, doc: d.toJS() as Manifest })));
const find = (kind: string, name: string) => docs.find((d) => d.doc.kind === kind && d.doc.metadata.name === name)?.doc;

describe("deploy/kubernetes", () => {
  test("the coordinator's Service forwards the actor port it listens on and advertises, and its HTTP port", () => {
    const deployment = find("Deployment", "revenant-coordinator")!;
    const service = find("Service", "revenant-coordinator")!;
    const container = deployment.spec.template.spec.containers[0];
    const ports = Object.fromEntries(service.spec.ports.map((p: Manifest) => [p.name, p.targetPort]));
    expect(ports).toEqual({ http: 8321, actors: 7070 });
    for (const p of container.ports) expect(ports[p.name]).toBe(p.containerPort);
    for (const [k, v] of Object.entries(service.spec.selector)) expect(deployment.spec.template.metadata.labels[k]).toBe(v);
    expect(deployment.spec.template.spec.serviceAccountName).toBe("revenant-coordinator");
    // The job body shipped beside it resolves, and its actors dial this Service's actor port.
    const body = JSON.parse(find("ConfigMap", "revenant-job")!.data["job.json"]);
    const cluster = resolveConfig({ file: null, env: {}, values: body }).config.cluster;
    expect(cluster.launcher).toBe("kubernetes");
    expect(clusterTransport(cluster)).toEqual({ kind: "tcp", host: "0.0.0.0", port: 7070, advertise: `revenant-coordinator.${deployment.metadata.namespace}.svc` });
    expect(cluster.kubernetes.image).toBe(container.image);
    expect(service.metadata.namespace).toBe(deployment.metadata.namespace);
  });

  test("a job body that asks for GPUs runs the CUDA image with its roles on CUDA devices", () => {
    const body = JSON.parse(find("ConfigMap", "revenant-job")!.data["job.json"]);
    const config = resolveConfig({ file: null, env: {}, values: body }).config;
    const gpuRoles = Object.entries(config.cluster.gpus).filter(([, n]) => n > 0).map(([role]) => role);
    expect(gpuRoles.sort()).toEqual(["actor_rollout", "critic"]);
    expect(config.cluster.kubernetes.image).toEndWith(":cuda");
    expect([config.worker.actor.device, config.worker.critic.device]).toEqual(["cuda", "cuda"]);
    const example = docs.find((d) => d.file === "actor-pod.example.yaml")!.doc;
    expect(example.spec.containers[0].image).toEndWith(":cuda");
  });

  test("the coordinator's Role lets it create, read and delete pods and secrets and read pod logs, nothing more", () => {
    const role = find("Role", "revenant-coordinator")!;
    const binding = find("RoleBinding", "revenant-coordinator")!;
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods", "secrets"], verbs: ["create", "get", "delete"] },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
    ]);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "revenant-coordinator", namespace: role.metadata.namespace }]);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "revenant-coordinator" });
  });

  test("the example actor pod is what the launcher builds", () => {
    const example = docs.find((d) => d.file === "actor-pod.example.yaml")!.doc;
    const env = { PATH: "/usr/bin", REVENANT_ACTOR_SPEC: "{}" };
    const built = podManifest({ actor: "critic", role: "critic", rank: 0, incarnation: 1, module: "/app/runtime/core/host/host.ts", env },
      { ...options({ owner: "gsm8k-1", image: example.spec.containers[0].image, gpus: { critic: 1 } }), nodeSelector: example.spec.nodeSelector }).pod;
    expect(example.spec.containers[0].command[1]).toBe("/app/runtime/core/host/host.ts");
    expect({ ...example, spec: { ...example.spec, containers: [{ ...example.spec.containers[0], command: undefined }] } })
      .toEqual({ ...built, spec: { ...built.spec, containers: [{ ...built.spec.containers[0], command: undefined }] } });
  });
});
