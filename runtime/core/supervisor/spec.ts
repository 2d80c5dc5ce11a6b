/**
 * Child specs, OTP style: plain data describing what to supervise, validated up front. A bad
 * spec (or two with one id) is rejected before anything starts, with the spec's index and id.
 *
 * @example
 * ```ts
 * const specs = parseChildSpecs([{ id: "critic", role: "critic", ranks: 2, restart: "permanent" }], roles);
 * ```
 */
import { z } from "zod";
import { ChildSpecError } from "./errors.ts";
import type { RoleEntry } from "../host/role.ts";

export const ChildSpecSchema = z.strictObject({
  /** Unique name; actors are named `<id>/<rank>`. */
  id: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, "lowercase letters, digits, _ and -, starting with a letter"),
  /** A registered role name (shipped roles, or ones registered in code; never a path from a request). */
  role: z.string().min(1),
  ranks: z.number().int().min(1).max(256).default(1),
  /** permanent: always restarted; transient: restarted unless it exited with code 0; temporary: never. */
  restart: z.enum(["permanent", "transient", "temporary"]).default("permanent"),
  /**
   * A group that survives the loss of ranks: a rank the supervisor gives up on (max_restarts
   * spent, crash loop) is dropped, with a `dropped` event, instead of failing the job; the group
   * fails when its last rank goes. Callers route work around dropped ranks (`live`).
   */
  elastic: z.boolean().default(false),
  /** Seconds between SIGTERM and SIGKILL at shutdown; default fault_tolerance.shutdown_grace_s. */
  shutdown_grace_s: z.number().positive().optional(),
  /** Passed to the role's constructor (must survive JSON). */
  options: z.record(z.string(), z.unknown()).default({}),
});

export type ChildSpec = z.output<typeof ChildSpecSchema>;
export type ChildSpecInput = z.input<typeof ChildSpecSchema>;

export function parseChildSpecs(input: readonly unknown[], roles: Readonly<Record<string, RoleEntry>>): ChildSpec[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const specs: ChildSpec[] = [];
  input.forEach((raw, i) => {
    const name = typeof (raw as { id?: unknown })?.id === "string" ? ` (${(raw as { id: string }).id})` : "";
    const r = ChildSpecSchema.safeParse(raw);
    if (!r.success) {
      for (const issue of r.error.issues) problems.push(`child spec ${i}${name}: ${issue.path.join(".") || "(spec)"}: ${issue.message}`);
      return;
    }
    if (seen.has(r.data.id)) problems.push(`child spec ${i}${name}: duplicate id ${r.data.id}`);
    seen.add(r.data.id);
    if (!Object.hasOwn(roles, r.data.role)) {
      problems.push(`child spec ${i}${name}: unknown role ${JSON.stringify(r.data.role)}; registered roles: ${Object.keys(roles).sort().join(", ") || "(none)"}`);
    }
    specs.push(r.data);
  });
  if (problems.length) throw new ChildSpecError(`invalid child specs:\n  - ${problems.join("\n  - ")}`);
  return specs;
}
