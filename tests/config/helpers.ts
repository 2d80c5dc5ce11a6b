/** Shared by the config tests: resolving with no file and no environment, and catching the ConfigError. */
import { ConfigError, resolveConfig } from "../../config/index.ts";

/** Resolves with no file and no environment unless given, so the host's variables never leak in. */
export const resolve = (o: Parameters<typeof resolveConfig>[0] = {}) => resolveConfig({ file: null, env: {}, ...o });

/** The ConfigError `fn` throws; fails the test when it throws nothing or something else. */
export function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}
