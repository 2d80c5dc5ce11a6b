/**
 * What a request may name on the coordinator's machine: files and folders inside the folders the
 * operator gave (`serve --data-root DIR`, `--model-root DIR`, each repeatable), and nothing else.
 *
 * - A relative path resolves inside a root (the first root, in the order given, where it exists).
 * - An absolute path must be inside a root after `realpath`: no `..` and no symlink leads out.
 * - With no root of a kind, any path of that kind in a request is refused.
 * - A refusal names the key and the roots and says nothing about the file itself: whether an
 *   outside path exists is never looked up, and no file's content is ever quoted.
 *
 * Accepted paths are rewritten to their real absolute paths, so the job reads what was checked.
 *
 * @example
 * ```ts
 * const roots = requestRoots({ dataRoots: ["/srv/data"], modelRoots: ["/srv/models"] });
 * const config = confineRequestPaths(parsed, roots); // or RequestPathError naming the key
 * ```
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import type { Config } from "../../../config/schema.ts";

/** The operator's folders, real absolute paths. */
export interface RequestRoots {
  data: string[];
  model: string[];
}

/** A request path the coordinator will not use: `key` names the configuration key. */
export class RequestPathError extends Error {
  override name = "RequestPathError";
  constructor(readonly key: string, message: string) {
    super(message);
  }
}

/** The roots from the serve flags: each must be an existing folder (a RangeError naming it otherwise). */
export function requestRoots(o: { dataRoots?: readonly string[]; modelRoots?: readonly string[] }): RequestRoots {
  const real = (flag: string) => (dir: string) => {
    let path: string;
    try {
      path = realpathSync(dir);
    } catch {
      throw new RangeError(`${flag} ${JSON.stringify(dir)}: no such folder`);
    }
    if (!statSync(path).isDirectory()) throw new RangeError(`${flag} ${JSON.stringify(dir)}: not a folder`);
    return path;
  };
  return { data: (o.dataRoots ?? []).map(real("--data-root")), model: (o.modelRoots ?? []).map(real("--model-root")) };
}

type Kind = "data" | "model";

/** The configuration with every path it names confined to the roots, or RequestPathError for the first that is not. */
export function confineRequestPaths(config: Config, roots: RequestRoots): Config {
  const out: Config = structuredClone(config);
  const d = out.data;
  d.train_files = d.train_files.map((f) => confine("data.train_files", f, ["data"], roots));
  d.val_files = d.val_files.map((f) => confine("data.val_files", f, ["data"], roots));
  // A tokenizer folder is usually a model folder, sometimes shipped beside the data.
  if (d.tokenizer) d.tokenizer = confine("data.tokenizer", d.tokenizer, ["model", "data"], roots);
  for (const role of ["actor", "critic"] as const) {
    const model = out.worker[role].model;
    if (model.path) model.path = confine(`worker.${role}.model.path`, model.path, ["model"], roots);
  }
  return out;
}

const FLAG: Record<Kind, string> = { data: "--data-root", model: "--model-root" };

function confine(key: string, path: string, kinds: Kind[], roots: RequestRoots): string {
  const allowed = kinds.flatMap((k) => roots[k]);
  const flags = kinds.map((k) => FLAG[k]).join(" or ");
  if (allowed.length === 0) {
    throw new RequestPathError(key, `${key}: this coordinator takes no paths in requests (it was started without ${flags}); ` +
      `ask its operator to serve a folder with ${flags} DIR, or run the job with \`bun run train\``);
  }
  const where = `the folders this coordinator serves (${flags}: ${allowed.join(", ")})`;
  const outside = new RequestPathError(key, `${key}: ${JSON.stringify(path)} is not inside ${where}; ` +
    "name a path relative to one of them, or an absolute path inside one");
  const candidates = isAbsolute(path) ? [resolve(path)] : allowed.map((root) => resolve(root, path));
  // Lexically outside every root: refused without touching the file system.
  const inside = candidates.filter((p) => allowed.some((root) => within(root, p)));
  if (inside.length === 0) throw outside;
  for (const candidate of inside) {
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (!allowed.some((root) => within(root, real))) throw outside; // a symlink that leads out
    return real;
  }
  throw new RequestPathError(key, `${key}: ${JSON.stringify(path)} does not exist in ${where}`);
}

/** Whether `path` is `root` or below it. */
function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}
