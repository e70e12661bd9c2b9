// What the network benchmarks (datapath, sockmap) share: reading iperf3 and
// sockperf output, medians, waiting for a server, and numeric options.

/** The receiver's rate, in bits per second, from the JSON `iperf3 -J` prints. */
export function iperf3Bps(json: string): number {
  const out = JSON.parse(json) as { end: { sum_received: { bits_per_second: number } } };
  return out.end.sum_received.bits_per_second;
}

/** The average latency, in microseconds, from what `sockperf ping-pong` prints. */
export function sockperfLatencyUs(out: string): number {
  const m = /avg-latency=([\d.]+)/.exec(out);
  if (m === null) throw new Error(`sockperf printed no latency:\n${out}`);
  return Number(m[1]);
}

/** The median; the mean of the two middle values for an even count. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Calls `fn` until it does not throw, every 100 ms, 50 times at most. */
export async function waitFor(fn: () => void, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      fn();
      return;
    } catch (err) {
      if (i >= 50) throw new Error(`${what} never answered`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A positive integer option `NAME N` from the arguments, or `def`. */
export function option(args: readonly string[], name: string, def: number): number {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`Invalid ${name}: ${String(args[i + 1])}`);
  return v;
}
