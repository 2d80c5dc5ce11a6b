/**
 * The consumer role of bench/shared_memory.ts, one actor process each. It receives bulk floats
 * either as a call argument over its Unix socket (the frame decoder hands it an array it owns) or
 * by reading a shared segment the coordinator wrote (copied into its own buffer, or loaded
 * straight into its model), and answers with a sample of what it got, so the bench can check that
 * every transfer delivered the current data.
 */
import { PolicyModel, type PolicyModelConfig } from "../native/policy_model.ts";
import { SharedSegment } from "../native/shared_memory.ts";

/** First and last float of an array: the bench stamps both with the transfer's number. */
type Stamp = [number, number];
const stamp = (x: Float32Array): Stamp => [x[0]!, x[x.length - 1]!];

export class ShmConsumer {
  private own: Float32Array;
  private segment: SharedSegment | undefined;
  private readonly model: PolicyModel | undefined;

  constructor(options: { floats: number; model?: PolicyModelConfig }) {
    this.own = new Float32Array(options.floats);
    // One CPU thread: the load is a copy, and the bench runs several consumers side by side.
    this.model = options.model ? new PolicyModel(options.model, { device: "cpu", threads: 1 }) : undefined;
  }

  /** Maps the coordinator's segment once (as a long-lived channel would); returns the ms it took. */
  attach(path: string, bytes: number): number {
    const t0 = performance.now();
    this.segment = SharedSegment.open(path, bytes);
    return performance.now() - t0;
  }

  /** Copies `count` floats at `offsetBytes` of the segment into this actor's own buffer. */
  fromSegment(offsetBytes: number, count: number): Stamp {
    this.own.set(this.mapped().floats(offsetBytes, count));
    return stamp(this.own);
  }

  /**
   * Zero copy: reads the floats where they lie in the segment, as a CPU rollout rank computes from
   * it (PolicyModel.computeFrom); answers their stamp.
   */
  inSegment(offsetBytes: number, count: number): Stamp {
    return stamp(this.mapped().floats(offsetBytes, count));
  }

  /** Today's path: the array arrived in this call's frame, in memory this actor owns; keep it. */
  fromSocket(x: Float32Array): Stamp {
    this.own = x;
    return stamp(this.own);
  }

  /**
   * Loads the model's weights straight from the segment (numParams floats at offset 0). Answers
   * nothing: the bench checks the weights with modelStamp() after the clock stops.
   */
  async loadFromSegment(): Promise<void> {
    const m = this.needModel();
    await m.loadParamsFrom(this.mapped().floats(0, m.numParams));
  }

  /** What a CPU rollout rank does on each push: its model computes from the segment itself (no copy). */
  async computeFromSegment(): Promise<void> {
    const m = this.needModel();
    await m.computeFrom(this.mapped().floats(0, m.numParams));
  }

  /** Loads the model's weights from an array sent over the socket. */
  async loadFromSocket(x: Float32Array): Promise<void> {
    await this.needModel().loadParamsFrom(x);
  }

  numParams(): number {
    return this.needModel().numParams;
  }

  /** The model's first and last weight, read back from native memory (outside the timed part). */
  async modelStamp(): Promise<Stamp> {
    const m = this.needModel();
    const params = new Float32Array(m.numParams);
    await m.copyParamsTo(params);
    return stamp(params);
  }

  private mapped(): SharedSegment {
    if (!this.segment) throw new Error("ShmConsumer: call attach(path, bytes) before reading the segment");
    return this.segment;
  }

  private needModel(): PolicyModel {
    if (!this.model) throw new Error("ShmConsumer: this consumer was started without options.model");
    return this.model;
  }
}
