import { describe, expect, test } from "vitest";
import type { NetlinkMessage } from "@dp/core";
import { XFRM_MSG } from "./_uapi.ts";
import { decodeSadInfo, decodeSpdInfo, Xfrm } from "./xfrm.ts";
import { fixtureRequest, normalize, recordingSocket } from "./_test_fixtures.ts";

function reply(type: number, attrs: [number, number[]][]): NetlinkMessage {
  const parts: number[] = [0xff, 0xff, 0xff, 0xff];
  for (const [t, data] of attrs) {
    const len = 4 + data.length;
    parts.push(len & 0xff, len >> 8, t & 0xff, t >> 8, ...data);
    while (parts.length % 4 !== 0) parts.push(0);
  }
  return { type, flags: 0, seq: 1, pid: 0, payload: Uint8Array.from(parts) };
}

function u32(...v: number[]): number[] {
  return v.flatMap((n) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]);
}

describe("Xfrm info", () => {
  test("spdInfo() sends the request of ip xfrm policy count and decodes every attribute", () => {
    const { nl, sent } = recordingSocket({
      reply: [
        reply(XFRM_MSG.NEWSPDINFO, [
          [1, u32(1, 3, 2, 4, 5, 6)],
          [2, u32(8, 1048576)],
          [3, [32, 24]],
          [4, [128, 64]],
        ]),
      ],
    });
    const x = new Xfrm(nl, undefined);
    expect(x.spdInfo()).toEqual({
      in: 1,
      out: 3,
      fwd: 2,
      inSocket: 4,
      outSocket: 5,
      fwdSocket: 6,
      hashBuckets: 8,
      hashMaxBuckets: 1048576,
      ipv4Threshold: { local: 32, remote: 24 },
      ipv6Threshold: { local: 128, remote: 64 },
    });
    expect(normalize(sent[0]!)).toBe(fixtureRequest("policy_count", XFRM_MSG.GETSPDINFO));
  });

  test("sadInfo() sends the request of ip xfrm state count and decodes the count and hash size", () => {
    const { nl, sent } = recordingSocket({
      reply: [
        reply(XFRM_MSG.NEWSADINFO, [
          [1, u32(7)],
          [2, u32(16, 1048576)],
        ]),
      ],
    });
    expect(new Xfrm(nl, undefined).sadInfo()).toEqual({ count: 7, hashBuckets: 16, hashMaxBuckets: 1048576 });
    expect(normalize(sent[0]!)).toBe(fixtureRequest("sadinfo", XFRM_MSG.GETSADINFO));
  });

  test("the decoders take missing attributes as 0 and skip unknown ones", () => {
    expect(decodeSadInfo(reply(0, [[9, u32(1)]]).payload)).toEqual({ count: 0, hashBuckets: 0, hashMaxBuckets: 0 });
    expect(decodeSpdInfo(reply(0, []).payload)).toMatchObject({ in: 0, out: 0, hashBuckets: 0 });
    expect(decodeSpdInfo(reply(0, []).payload)).not.toHaveProperty("ipv4Threshold");
  });
});
