// An ask owned by the system until it settles: it may move between hosts (a retry on a replica or
// at a fallback location) but keeps the one deadline it was given, so no ask outlives its
// timeout however often its host is lost.
//
//   PendingAsk; pendingAsk(to, msg, {timeoutMs, retry}, expired) -> {p, promise}
import type { ActorError } from "./actor.ts";

export interface PendingAsk {
  to: string;
  readonly msg: unknown;
  readonly retry: boolean;
  readonly timeoutMs: number;
  /** performance.now() by which it must be settled (Infinity: never); kept across retries. */
  readonly deadline: number;
  attempts: number;
  settled: boolean;
  resolve(value: unknown): void;
  reject(err: ActorError): void;
  /** Set by the proxy holding it, so a timeout can drop it there. */
  cancel?: () => void;
}

/** `expired(p)` says why it failed when the deadline passes (a timeout, or nowhere to run it). */
export function pendingAsk<R>(
  to: string,
  msg: unknown,
  opts: { timeoutMs: number; retry: boolean },
  expired: (p: PendingAsk) => ActorError,
): { p: PendingAsk; promise: Promise<R> } {
  const { timeoutMs } = opts;
  let p!: PendingAsk;
  const promise = new Promise<R>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const settle = (fn: () => void) => {
      if (p.settled) return;
      p.settled = true;
      if (timer) clearTimeout(timer);
      fn();
    };
    p = {
      to,
      msg,
      retry: opts.retry,
      timeoutMs,
      deadline: performance.now() + timeoutMs,
      attempts: 0,
      settled: false,
      resolve: (v) => settle(() => resolve(v as R)),
      reject: (e) => settle(() => reject(e)),
    };
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => {
        p.cancel?.();
        p.reject(expired(p));
      }, timeoutMs);
    }
  });
  return { p, promise };
}
