/**
 * Configuration errors. Each problem names the key path, where the bad value came from
 * (file:line:col, environment variable or command-line argument), the value and what is allowed.
 */

/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /** Dotted key path, e.g. `fault_tolerance.max_restarts`; `(file)` for whole-file problems. */
  path: string;
  /** Where the value came from: `config/ppo.yaml:12:3`, `env VERL_MAX_RESTARTS`, `argument a.b=c`, `default`. */
  source: string;
  /** The offending value, when there is one. */
  value?: unknown;
  /** What would have been accepted, or what went wrong. */
  message: string;
}

/** Thrown for any invalid configuration; `message` lists every problem, one per line. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.problems = problems;
  }
}

function formatValue(value: unknown): string {
  if (value === undefined) return "";
  const text = JSON.stringify(value);
  return ` = ${text && text.length > 60 ? text.slice(0, 57) + "..." : text}`;
}

/** One problem in one line; several, one per line under a head that counts them. */
export function formatProblems(problems: ConfigProblem[]): string {
  const line = (p: ConfigProblem) => `${p.path}${formatValue(p.value)} (${p.source}): ${p.message}`;
  if (problems.length === 1) return `invalid configuration: ${line(problems[0]!)}`;
  return [`invalid configuration (${problems.length} problems):`, ...problems.map((p) => `  - ${line(p)}`)].join("\n");
}
