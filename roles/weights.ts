/**
 * Policy weights on their way from the trained policy (actor_rollout) to the rollout ranks, by
 * version. On one host they go through a shared-memory segment the policy writes once and every
 * rank maps; elsewhere the trainer sends the parameters over each rank's connection. A rank knows
 * which version it holds and refuses to generate with another (StaleWeightsError), so a rank
 * that was restarted, or missed a push, can never sample from the wrong policy.
 *
 * Segment layout (little-endian): magic "RVWT" (u32), layout 1 (u32), weights version (f64; -1
 * while being written), parameter count (f64), then the float32 parameters from byte 64. A LoRA
 * policy's parameters are its adapters alone (numTrained): the ranks load the frozen base once,
 * from the same folder, and every push carries only the adapters. The
 * version is written last, so a segment a crashed writer left half-written is never read.
 *
 * A rank on the CPU computes straight from the mapped segment (PolicyModel.computeFrom): a push
 * copies nothing on the rank's side. Its weights then change when the policy writes the next
 * version, so such a rank checks the segment's version before and after every call it serves
 * (checkSegmentVersion); a call that overlapped a write fails as stale and is served again.
 *
 * @example
 * ```ts
 * const seg = await publishWeights(model, "/dev/shm/job.weights", 3); // in the policy
 * await loadWeights(model, { version: 3, segment: seg }); // in a rollout rank
 * ```
 */
import type { PolicyModel } from "../native/policy_model.ts";
import { SharedSegment } from "../native/shared_memory.ts";

/** Where a version of the weights can be read: a shared-memory segment on this host. */
export interface WeightSegment {
  path: string;
  bytes: number;
}

/** What a generate call needs: this version of the weights, from this segment when there is one. */
export interface WeightRef {
  version: number;
  segment?: WeightSegment;
}

/** A push: the version with its segment, or with the parameters themselves (over the connection). */
export type WeightPush = WeightRef & { params?: Float32Array };

/** The rank holds another version than the call needs, and was not given a way to read it. */
export class StaleWeightsError extends Error {
  override name = "StaleWeightsError";
}

const MAGIC = 0x54575652; // "RVWT"
const LAYOUT = 1;
const HEADER_BYTES = 64;

/** Bytes of a segment holding `params` parameters. */
export const segmentBytes = (params: number): number => HEADER_BYTES + 4 * params;

/**
 * One process's mappings of weight segments, by path: a segment is mapped once and reused for
 * every version (mapping anew costs page faults on every push).
 */
class Mappings {
  private readonly open = new Map<string, SharedSegment>();

  get(path: string, bytes: number, create: boolean): SharedSegment {
    const seg = this.open.get(path);
    if (seg && seg.bytes.byteLength === bytes) return seg;
    const fresh = create ? SharedSegment.create(path, bytes) : SharedSegment.open(path, bytes);
    this.open.set(path, fresh);
    return fresh;
  }
}

const mappings = new Mappings();

function header(seg: SharedSegment): DataView {
  return new DataView(seg.bytes.buffer, seg.bytes.byteOffset, HEADER_BYTES);
}

/** Writes the model's parameters into the segment at `path` as `version`; the segment to read them from. */
export async function publishWeights(model: PolicyModel, path: string, version: number): Promise<WeightSegment> {
  const bytes = segmentBytes(model.numTrained);
  const seg = mappings.get(path, bytes, true);
  const h = header(seg);
  h.setFloat64(8, -1, true);
  h.setUint32(0, MAGIC, true);
  h.setUint32(4, LAYOUT, true);
  h.setFloat64(16, model.numTrained, true);
  await model.copyParamsTo(seg.floats(HEADER_BYTES, model.numTrained));
  h.setFloat64(8, version, true);
  return { path, bytes };
}

/**
 * Takes `push` into the model: from its segment, or its parameters. Resolves to the segment the
 * model now computes from without a copy (see PolicyModel.computeFrom), or undefined when it holds
 * a copy of its own. Throws StaleWeightsError when the segment holds another version (a newer
 * push overwrote it) and no parameters came along.
 */
export async function loadWeights(model: PolicyModel, push: WeightPush): Promise<WeightSegment | undefined> {
  if (push.params) {
    await model.loadParamsFrom(push.params);
    return undefined;
  }
  if (!push.segment) throw new StaleWeightsError(`weights version ${push.version} came with neither a segment nor parameters`);
  const { path, bytes } = push.segment;
  if (bytes !== segmentBytes(model.numTrained)) {
    throw new RangeError(`weight segment ${path} holds ${bytes} bytes; a model of ${model.numTrained} parameters needs ${segmentBytes(model.numTrained)}`);
  }
  const seg = mappings.get(path, bytes, false);
  const h = header(seg);
  if (h.getUint32(0, true) !== MAGIC || h.getUint32(4, true) !== LAYOUT) throw new TypeError(`${path} is not a weight segment (layout ${LAYOUT})`);
  checkSegmentVersion(push.segment, push.version);
  const live = await model.computeFrom(seg.floats(HEADER_BYTES, model.numTrained));
  // A writer that started a newer version meanwhile would have marked the header first.
  checkSegmentVersion(push.segment, push.version, "was rewritten while");
  return live ? push.segment : undefined;
}

/**
 * Throws StaleWeightsError unless the (already mapped) segment holds `version`: what a rank that
 * computes from the segment checks around each call it serves.
 */
export function checkSegmentVersion(segment: WeightSegment, version: number, when = "holds another version than"): void {
  const held = header(mappings.get(segment.path, segment.bytes, false)).getFloat64(8, true);
  if (held !== version) throw new StaleWeightsError(`weight segment ${segment.path} ${when} version ${version} (it holds ${held})`);
}
