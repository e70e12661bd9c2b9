import { describe, expect, test } from "vitest";
import { type NetlinkMessage, NetlinkError, NetlinkWriter, NotSupportedError, parseNetlinkMessages } from "@dp/core";
import { XFRM_MSG, XFRMA } from "./_uapi.ts";
import { decodePolicy, encodePolicyRequest } from "./policies.ts";
import { decodeState, encodeStateRequest } from "./states.ts";
import { decodeXfrmEvent, listXfrmForSync, type XfrmEvent } from "./watch.ts";
import type { Xfrm } from "./xfrm.ts";
import type { XfrmPolicySpec, XfrmStateSpec } from "./types.ts";

const STATE: XfrmStateSpec = {
  src: "192.168.0.1",
  dst: "192.168.0.2",
  spi: 0x300,
  reqid: 1,
  mode: "tunnel",
  aead: { name: "rfc4106(gcm(aes))", key: new Uint8Array(20).fill(7), icvBits: 128 },
  mark: { value: 0xe00, mask: 0xf00 },
};
const POLICY: XfrmPolicySpec = {
  selector: { src: "10.0.0.0/24", dst: "10.1.0.0/24" },
  dir: "out",
  priority: 3,
  mark: { value: 0xe00, mask: 0xf00 },
  templates: [{ src: "192.168.0.1", dst: "192.168.0.2", reqid: 1, mode: "tunnel" }],
};

/** The payload of the add request for a spec: `struct + attributes`, as the kernel's NEWSA/NEWPOLICY events are laid out. */
function statePayload(): Uint8Array {
  const w = new NetlinkWriter();
  encodeStateRequest(w, { op: "add", seq: 1, spec: STATE });
  return parseNetlinkMessages(w.bytes())[0]!.payload;
}

function policyPayload(): Uint8Array {
  const w = new NetlinkWriter();
  encodePolicyRequest(w, { op: "add", seq: 1, spec: POLICY });
  return parseNetlinkMessages(w.bytes())[0]!.payload;
}

function message(type: number, payload: Uint8Array): NetlinkMessage {
  return { type, flags: 0, seq: 0, pid: 0, payload };
}

function attr(type: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array((4 + data.length + 3) & ~3);
  new DataView(out.buffer).setUint16(0, 4 + data.length, true);
  new DataView(out.buffer).setUint16(2, type, true);
  out.set(data, 4);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("decodeXfrmEvent()", () => {
  test("new and update events carry the struct and its attributes", () => {
    expect(decodeXfrmEvent(message(XFRM_MSG.NEWSA, statePayload()))).toEqual({
      type: "state",
      action: "new",
      existing: false,
      state: decodeState(statePayload()),
    });
    expect(decodeXfrmEvent(message(XFRM_MSG.UPDPOLICY, policyPayload()))).toEqual({
      type: "policy",
      action: "update",
      existing: false,
      policy: decodePolicy(policyPayload()),
    });
  });

  test("delete events put the id first and the struct in XFRMA_SA / XFRMA_POLICY, the other attributes after", () => {
    const sa = statePayload();
    const delsa = concat(new Uint8Array(24), attr(XFRMA.SA, sa.subarray(0, 224)), sa.subarray(224));
    const ev = decodeXfrmEvent(message(XFRM_MSG.DELSA, delsa));
    expect(ev).toEqual({ type: "state", action: "delete", existing: false, state: decodeState(sa) });
    expect(ev.type === "state" && ev.state.mark).toEqual({ value: 0xe00, mask: 0xf00 });

    const pol = policyPayload();
    const delpolicy = concat(new Uint8Array(64), attr(XFRMA.POLICY, pol.subarray(0, 168)), pol.subarray(168));
    const pev = decodeXfrmEvent(message(XFRM_MSG.DELPOLICY, delpolicy));
    expect(pev).toEqual({ type: "policy", action: "delete", existing: false, policy: decodePolicy(pol) });
    expect(pev.type === "policy" && pev.policy.templates[0]?.dst).toBe("192.168.0.2");
  });

  test("expire events carry the struct, the hard flag and the attributes", () => {
    const sa = statePayload();
    const hard = new Uint8Array(8);
    hard[0] = 1;
    expect(decodeXfrmEvent(message(XFRM_MSG.EXPIRE, concat(sa.subarray(0, 224), hard, sa.subarray(224))))).toEqual({
      type: "expire",
      hard: true,
      state: decodeState(sa),
    });
    const pol = policyPayload();
    expect(
      decodeXfrmEvent(message(XFRM_MSG.POLEXPIRE, concat(pol.subarray(0, 168), new Uint8Array(8), pol.subarray(168)))),
    ).toEqual({ type: "policyExpire", hard: false, policy: decodePolicy(pol) });
  });

  test("flush events name what was flushed", () => {
    expect(decodeXfrmEvent(message(XFRM_MSG.FLUSHSA, Uint8Array.of(50, 0, 0, 0)))).toEqual({
      type: "flush",
      what: "states",
      proto: "esp",
    });
    expect(decodeXfrmEvent(message(XFRM_MSG.FLUSHSA, Uint8Array.of(255, 0, 0, 0)))).toMatchObject({ proto: undefined });
    expect(
      decodeXfrmEvent(message(XFRM_MSG.FLUSHPOLICY, attr(XFRMA.POLICY_TYPE, Uint8Array.of(1, 0, 0, 0, 0, 0)))),
    ).toEqual({ type: "flush", what: "policies", policyType: "sub" });
  });

  test("other messages are passed on raw, and truncated ones are refused", () => {
    const payload = Uint8Array.of(1, 2, 3, 4);
    expect(decodeXfrmEvent(message(XFRM_MSG.NEWAE, payload))).toEqual({
      type: "message",
      messageType: XFRM_MSG.NEWAE,
      name: "XFRM_MSG_NEWAE",
      payload,
    });
    expect(() => decodeXfrmEvent(message(XFRM_MSG.EXPIRE, new Uint8Array(100)))).toThrow(SyntaxError);
    expect(() => decodeXfrmEvent(message(XFRM_MSG.DELPOLICY, new Uint8Array(64)))).toThrow(/no XFRMA_POLICY/);
    expect(() => decodeXfrmEvent(message(XFRM_MSG.ACQUIRE, new Uint8Array(200)))).toThrow(/200 bytes, expected 280/);
  });
});

describe("the (re)synchronisation listing", () => {
  const policy = decodePolicy(policyPayload());
  const state = decodeState(statePayload());
  /** A handle whose tables list or throw as told. */
  function tables(policies: () => unknown[], states: () => unknown[]): Xfrm {
    return { policies: { list: policies }, states: { list: states } } as unknown as Xfrm;
  }
  const live = new AbortController().signal;
  const list = (x: Xfrm): XfrmEvent[] => [...listXfrmForSync(x, live)];

  test("policies, then states, as existing changes", () => {
    expect(
      list(
        tables(
          () => [policy],
          () => [state],
        ),
      ),
    ).toEqual([
      { type: "policy", action: "new", existing: true, policy },
      { type: "state", action: "new", existing: true, state },
    ]);
  });

  test.each([
    ["a NotSupportedError", () => new NotSupportedError("xfrm states (needs CONFIG_INET_ESP)")],
    ["ENOSYS", () => new NetlinkError("Cannot list xfrm states", { op: "XFRM_MSG_GETSA", errno: 38 })],
    ["EPROTONOSUPPORT", () => new NetlinkError("Cannot list xfrm states", { op: "XFRM_MSG_GETSA", errno: 93 })],
  ])("a table the kernel does not support (%s) lists nothing, for either table", (_, make) => {
    const fail = (): never => {
      throw make();
    };
    expect(list(tables(() => [policy], fail))).toEqual([{ type: "policy", action: "new", existing: true, policy }]);
    expect(list(tables(fail, () => [state]))).toEqual([{ type: "state", action: "new", existing: true, state }]);
  });

  test("any other failure is an error event, for either table, and the other table is still listed", () => {
    const cause = new NetlinkError("Cannot list xfrm policies", { op: "XFRM_MSG_GETPOLICY", errno: 12 });
    const fail = (): never => {
      throw cause;
    };
    const [err, rest] = list(tables(fail, () => [state]));
    expect(err).toMatchObject({ type: "error" });
    expect(err?.type === "error" && err.error.message).toMatch(/^Cannot list xfrm policies to synchronise: /);
    expect(err?.type === "error" && err.error.cause).toBe(cause);
    expect(rest).toEqual({ type: "state", action: "new", existing: true, state });
    const [p, serr] = list(tables(() => [policy], fail));
    expect(p).toMatchObject({ type: "policy", existing: true });
    expect(serr?.type === "error" && serr.error.message).toMatch(/^Cannot list xfrm states to synchronise: /);
  });
});
