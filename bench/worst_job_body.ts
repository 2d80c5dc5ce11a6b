/** The costliest job body a request may carry, shared by bench/server_healthz.ts and the service tests. */
import { LIMITS } from "../config/schema.ts";
import { MODEL_LIMITS } from "../native/model_limits.ts";

/**
 * The costliest job body the schema allows to check: the largest data set of the longest
 * problems (64-digit additions), with a response budget and context that fit them. Checking it
 * by generating the data set took about a second on one core.
 */
export const WORST_BODY = {
  data: { task: "addition", train_size: LIMITS.train_size, val_size: LIMITS.val_size, min_digits: LIMITS.digits, max_digits: LIMITS.digits, train_batch_size: 8 },
  worker: {
    actor: { max_new_tokens: LIMITS.digits + 2, model: { context: MODEL_LIMITS.context.max, width: 8, heads: 1, layers: 1 } },
    critic: { model: { context: MODEL_LIMITS.context.max, width: 8, heads: 1, layers: 1 } },
  },
};
