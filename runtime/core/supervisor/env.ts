/**
 * The environment an actor process gets: the coordinator's, minus its secrets. An actor runs
 * role code (and, later, users' reward functions) that has no business holding the server's
 * bearer token or the operator's cloud credentials, and a process environment leaks easily
 * (crash dumps, `/proc/<pid>/environ`, a role that logs its environment).
 *
 * Dropped from the inherited environment:
 * - `REVENANT_TOKEN`, the server's bearer token: always, even when passed explicitly;
 * - any name with one of these words in it (split at `_`, any case): TOKEN, SECRET, PASSWORD,
 *   PASSWD, PASSPHRASE, CREDENTIAL(S), APIKEY / API_KEY, PRIVATE_KEY, ACCESS_KEY — so
 *   `HF_TOKEN`, `GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `AWS_ACCESS_KEY_ID`, `OPENAI_API_KEY`.
 * A role that needs one gets it explicitly, through the supervisor's `env` option.
 */

/** Never handed to an actor, explicit or not: the coordinator's own credentials. */
const COORDINATOR_SECRETS: ReadonlySet<string> = new Set(["REVENANT_TOKEN"]);
const SECRET_WORDS = /(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY)(_|$)/i;

/** True for a variable an actor does not inherit. */
export function isSecretName(name: string): boolean {
  return COORDINATOR_SECRETS.has(name) || SECRET_WORDS.test(name);
}

/**
 * The environment for an actor: `inherited` without secret-looking names, then `explicit`
 * (passed as given, but for the coordinator's own secrets), then `own` (the actor's spawn spec).
 */
export function actorEnv(
  inherited: Readonly<Record<string, string | undefined>>,
  explicit: Readonly<Record<string, string>> = {},
  own: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) {
    if (value !== undefined && !isSecretName(name)) env[name] = value;
  }
  for (const [name, value] of Object.entries(explicit)) {
    if (!COORDINATOR_SECRETS.has(name)) env[name] = value;
  }
  return Object.assign(env, own);
}
