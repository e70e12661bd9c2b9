// struct dp_event records for the monitor's unit tests, encoded with the
// generated codec: a TCP drop of 10.0.0.1:40000 -> 10.0.0.2:80 by default.
import { DpEvent } from "../_gen/datapath.ts";

/** A 16-byte datapath address of 10.0.0.x, fd00::1 or fd00::2. */
export function addr(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (text.includes(".")) out.set([0xff, 0xff, ...text.split(".").map(Number)], 10);
  else if (text === "fd00::1") out.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  else if (text === "fd00::2") out.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  return out;
}

/** An encoded record with `e` over the default fields. */
export function record(e: Partial<DpEvent>): Uint8Array {
  const bytes = new Uint8Array(DpEvent.size);
  DpEvent.encode(
    {
      timestamp: 5n,
      type: 1,
      reason: 2,
      direction: 1,
      verdict: 4,
      family: 4,
      protocol: 6,
      endpoint_id: 12,
      ifindex: 3,
      src_identity: 256,
      dst_identity: 300,
      len: 74,
      saddr: addr("10.0.0.1"),
      daddr: addr("10.0.0.2"),
      sport: 40000,
      dport: 80,
      rule_cookie: 0,
      ct: 0,
      pad: new Uint8Array(7),
      ...e,
    },
    new DataView(bytes.buffer),
    0,
  );
  return bytes;
}
