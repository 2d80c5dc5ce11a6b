/**
 * The parts an Actor is made of, without processes: the call queue (order, answers, lost calls
 * and their retries), the deadline clock (one timer for the head call, re-aimed lazily), the ping
 * watch (silence past the timeout is a hang, a stall of our own is not) and the replay log
 * (trimmed by snapshots, snapshots requested when replay would cost too much). Time is a fake
 * clock moved by hand: nothing here sleeps or measures elapsed time.
 */
import { describe, expect, test } from "bun:test";
import { CallQueue, type CallKind, type PendingCall } from "../../runtime/core/supervisor/call_queue.ts";
import { DeadlineClock, type Clock } from "../../runtime/core/supervisor/deadline_clock.ts";
import { PingWatch } from "../../runtime/core/supervisor/ping_watch.ts";
import { ReplayLog, type ReplayLogOptions } from "../../runtime/core/supervisor/replay_log.ts";
import type { Timer } from "../../runtime/core/timers.ts";

interface FakeTimer {
  at: number;
  fn: () => void;
  live: boolean;
}

/** A clock whose time moves only when told, firing the timers that fall due on the way, in order. */
class FakeClock implements Clock {
  private t = 0;
  private readonly timers: FakeTimer[] = [];
  /** Timers ever set. */
  set = 0;

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    this.set++;
    return { cancel: () => (timer.live = false) };
  }

  /** When the live timers will fire. */
  get armed(): number[] {
    return this.timers.filter((t) => t.live).map((t) => t.at);
  }

  advanceTo(to: number): void {
    for (let fired = 0; ; fired++) {
      const due = this.timers.filter((t) => t.live && t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      // A timer that keeps setting itself for the moment it fires would spin here forever.
      if (fired === 1000) throw new Error(`timers keep firing at ${due.at} ms without time moving on`);
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.t = to;
  }
}

describe("deadline clock", () => {
  function clock() {
    const time = new FakeClock();
    const expired: number[] = [];
    return { time, expired, deadline: new DeadlineClock((id) => expired.push(id), time) };
  }

  test("the watched call expires at its deadline, not before", () => {
    const { time, expired, deadline } = clock();
    deadline.watch(1, 2);
    expect(time.armed).toEqual([2000]);
    time.advanceTo(1999);
    expect(expired).toEqual([]);
    time.advanceTo(2000);
    expect(expired).toEqual([1]);
  });

  test("a call answered in time: the timer fires, finds nothing watched, and is not re-aimed", () => {
    const { time, expired, deadline } = clock();
    deadline.watch(1, 2);
    time.advanceTo(500);
    deadline.unwatch();
    time.advanceTo(10_000);
    expect(expired).toEqual([]);
    expect(time.armed).toEqual([]);
  });

  test("only the head call is timed: one timer, re-aimed lazily when the next deadline is later", () => {
    const { time, expired, deadline } = clock();
    deadline.watch(1, 2);
    time.advanceTo(500);
    deadline.unwatch();
    deadline.watch(2, 5); // due at 5500: the timer due at 2000 is kept
    expect(time.armed).toEqual([2000]);
    time.advanceTo(2000);
    expect(expired).toEqual([]);
    expect(time.armed).toEqual([5500]); // fired early, re-aimed
    time.advanceTo(5500);
    expect(expired).toEqual([2]);
    expect(time.set).toBe(2);
  });

  test("an earlier deadline re-aims at once and the later timer is cancelled", () => {
    const { time, expired, deadline } = clock();
    deadline.watch(1, 10);
    time.advanceTo(100);
    deadline.unwatch();
    deadline.watch(2, 1);
    expect(time.armed).toEqual([1100]);
    time.advanceTo(20_000);
    expect(expired).toEqual([2]);
  });

  test("running time is measured from watch; stop cancels and says which call was watched", () => {
    const { time, expired, deadline } = clock();
    time.advanceTo(100);
    deadline.watch(3, 1);
    time.advanceTo(350);
    expect(deadline.runningMs()).toBe(250);
    expect(deadline.stop()).toBe(3);
    expect(deadline.watching).toBeUndefined();
    expect(time.armed).toEqual([]);
    time.advanceTo(5000);
    expect(expired).toEqual([]);
  });
});

/** Lets settled promises run their callbacks (a macrotask turn: every microtask drains first). */
const settle = () => new Promise((r) => setImmediate(r));

describe("ping watch", () => {
  // Interval 100 ms, timeout 500 ms; the watch starts at t = 0, when the actor said it was ready.
  function watch() {
    let t = 0;
    const pings = new PingWatch(100, 500, () => t);
    /** Runs the interval checks up to `to`, one every 100 ms; true if one found the actor hung. */
    const checkUntil = (to: number) => {
      let hung = false;
      for (; t < to; ) {
        t += 100;
        hung ||= pings.silentTooLong();
      }
      return hung;
    };
    return { pings, checkUntil, at: (to: number) => (t = to) };
  }

  test("an actor silent for the timeout is still alive; past it, it is hung", () => {
    const { checkUntil, pings } = watch();
    expect(checkUntil(500)).toBe(false); // silent for exactly 500 ms
    expect(checkUntil(600)).toBe(true);
    expect(pings.silentTooLong()).toBe(true); // and stays so
  });

  test("any message from the actor restarts its timeout", () => {
    const { checkUntil, pings } = watch();
    expect(checkUntil(400)).toBe(false);
    pings.heard();
    expect(checkUntil(900)).toBe(false); // 500 ms since it was heard at 400
    expect(checkUntil(1000)).toBe(true);
  });

  test("a check that runs late (our own event loop stalled) does not blame the actor", () => {
    const { pings, at, checkUntil } = watch();
    at(5000); // no check ran for 5 s: the actor's answers may be waiting unread
    expect(pings.silentTooLong()).toBe(false);
    // The actor is counted silent from one interval before the late check, at 4900, on.
    expect(checkUntil(5400)).toBe(false);
    expect(checkUntil(5500)).toBe(true);
  });
});

describe("replay log", () => {
  /** A log whose snapshot requests are counted and answered by the test. */
  function replayLog(o: Partial<ReplayLogOptions> = {}) {
    const requests: { resolve(v: unknown): void; reject(e: Error): void }[] = [];
    const log = new ReplayLog({ maxReplayMs: 100, autoSnapshotCalls: 1000, ...o },
      () => new Promise((resolve, reject) => requests.push({ resolve, reject })));
    return { log, requests };
  }

  test("a snapshot trims the log: restore is loadState(snapshot), then the calls after it", () => {
    const { log } = replayLog();
    log.record("add", [1], 1);
    log.record("add", [2], 1);
    expect(log.restoreCalls()).toEqual([{ method: "add", args: [1] }, { method: "add", args: [2] }]);
    log.snapshotTaken({ n: 3 }, 5);
    expect([log.length, log.replayCostMs, log.latestState]).toEqual([0, 0, { n: 3 }]);
    log.record("add", [4], 1);
    expect(log.restoreCalls()).toEqual([{ method: "__loadState", args: [{ n: 3 }] }, { method: "add", args: [4] }]);
  });

  test("a state loaded from outside trims the log the same way", () => {
    const { log } = replayLog();
    log.record("add", [1], 1);
    log.snapshotLoaded({ n: 10 });
    expect(log.restoreCalls()).toEqual([{ method: "__loadState", args: [{ n: 10 }] }]);
  });

  test("replay past max_replay_s asks for one snapshot; none more while it is pending", async () => {
    const { log, requests } = replayLog({ maxReplayMs: 100 });
    log.record("step", [], 60);
    expect(requests).toHaveLength(0);
    log.record("step", [], 60); // 120 ms of replay > 100
    log.record("step", [], 60);
    expect(requests).toHaveLength(1);
    log.snapshotTaken({ n: 3 }, 10); // what the actor does when the snapshot is answered
    requests[0]!.resolve({ n: 3 });
    await settle();
    log.record("step", [], 101);
    expect(requests).toHaveLength(2);
  });

  test("a failed snapshot request is asked again on the next call logged", async () => {
    const { log, requests } = replayLog({ maxReplayMs: 100 });
    log.record("step", [], 101);
    requests[0]!.reject(new Error("the actor died"));
    await settle();
    log.record("step", [], 1);
    expect(requests).toHaveLength(2);
  });

  test("the budget is at least twice what a snapshot costs: a snapshot must be worth taking", () => {
    const { log, requests } = replayLog({ maxReplayMs: 100 });
    log.snapshotTaken({}, 300);
    log.record("step", [], 600);
    expect(requests).toHaveLength(0);
    log.record("step", [], 1);
    expect(requests).toHaveLength(1);
  });

  test("a snapshot on its way (a checkpoint's) stands for the log's own until it is answered or fails", async () => {
    const { log, requests } = replayLog({ maxReplayMs: 100 });
    log.snapshotQueued();
    log.record("step", [], 120); // past the budget, but the queued snapshot comes after this call
    expect(requests).toHaveLength(0);
    log.snapshotTaken({ n: 1 }, 10);
    expect(log.length).toBe(0);
    log.record("step", [], 101);
    expect(requests).toHaveLength(1);
    log.snapshotTaken({ n: 2 }, 10); // the log's own, answered
    requests[0]!.resolve({ n: 2 });
    await settle();
    log.snapshotQueued();
    log.snapshotFailed();
    log.record("step", [], 101);
    expect(requests).toHaveLength(2);
  });

  test("a long log asks for a snapshot even when replaying it is cheap", () => {
    const { log, requests } = replayLog({ autoSnapshotCalls: 3 });
    log.record("add", [1], 0);
    log.record("add", [2], 0);
    expect(requests).toHaveLength(0);
    log.record("add", [3], 0);
    expect(requests).toHaveLength(1);
  });
});

describe("call queue", () => {
  /** A queue that records what it transmits. Settling calls is the actor's part, not tested here. */
  function callQueue() {
    const sent: number[] = [];
    const queue = new CallQueue((call) => sent.push(call.id));
    const push = (method: string, kind: CallKind = "user"): PendingCall => queue.push(kind, method, [], 5, { resolve() {}, reject() {} });
    return { queue, sent, push };
  }

  test("calls are sent and answered in submission order; the head, once sent, is the call served", () => {
    const { queue, sent, push } = callQueue();
    const [a, b, c] = ["a", "b", "c"].map((m) => push(m));
    expect(queue.serving).toBeUndefined(); // queued while no process is there
    queue.sendUnsent();
    expect(sent).toEqual([a!.id, b!.id, c!.id]);
    expect(queue.serving).toBe(a!);
    expect(queue.take(b!.id)).toBeUndefined(); // an answer out of order takes nothing
    expect(queue.take(a!.id)).toBe(a!);
    expect(queue.serving).toBe(b!);
    expect(queue.length).toBe(2);
  });

  test("restore calls go ahead of everything, and are dropped when their incarnation dies", () => {
    const { queue, push } = callQueue();
    const user = push("add");
    expect(queue.prependRestore([{ method: "__loadState", args: [{}] }, { method: "add", args: [1] }], 5)).toBe(2);
    queue.sendUnsent();
    expect(queue.serving?.kind).toBe("restore");
    queue.sortLost(true, -1);
    expect(queue.drain()).toEqual([user]);
  });

  test("lost calls: sent ones are counted and kept in place until their retries run out", () => {
    const { queue, push } = callQueue();
    const [sentCall, snapshot] = [push("add"), push("__getState", "snapshot")];
    queue.sendUnsent();
    const unsent = push("value");
    const first = queue.sortLost(true, 1);
    expect(first).toEqual({ retried: [sentCall], exhausted: [] });
    expect([sentCall.attempts, snapshot.attempts, unsent.attempts]).toEqual([1, 1, 0]);
    expect(queue.serving).toBeUndefined(); // unsent again, for the next incarnation
    queue.sendUnsent();
    const second = queue.sortLost(true, 1);
    expect(second.exhausted).toEqual([sentCall]); // lost twice with max_task_retries=1
    expect(second.retried).toEqual([unsent]);
    expect(queue.drain()).toEqual([snapshot, unsent]); // an internal call is never given up here
  });

  test("a group restart (an innocent rank) does not count against retries", () => {
    const { queue, push } = callQueue();
    const call = push("add");
    queue.sendUnsent();
    expect(queue.sortLost(false, 0)).toEqual({ retried: [call], exhausted: [] });
    expect(call.attempts).toBe(0);
  });

  test("−1 retries forever", () => {
    const { queue, push } = callQueue();
    const call = push("add");
    for (let death = 0; death < 50; death++) {
      queue.sendUnsent();
      expect(queue.sortLost(true, -1).exhausted).toEqual([]);
    }
    expect(call.attempts).toBe(50);
  });
});
