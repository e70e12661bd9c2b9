import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { KvstoreError, type Kvstore } from "./kvstore.ts";
import { PrefixMirror } from "./_mirror.ts";

// A store whose list answers and whose watch never connects.
function stuckWatchStore(): Kvstore {
  const chain = <T>(end: T): unknown =>
    new Proxy(() => undefined, {
      get: (_t, name) => (name === "exec" || name === "create" ? () => end : () => chain(end)),
      apply: () => chain(end),
    });
  const client = {
    getAll: () => chain(Promise.resolve({ header: { revision: "5" }, kvs: [] })),
    watch: () => chain(new Promise(() => undefined)),
  };
  return { client: () => client, requestTimeout: 200, closed: false } as unknown as Kvstore;
}

describe("PrefixMirror", () => {
  it("fails the first sync when the watch does not connect within the request timeout", async () => {
    const mirror = new PrefixMirror(stuckWatchStore(), "dp/t/", { upsert: () => undefined, delete: () => undefined });
    const t0 = Date.now();
    await assert.rejects(mirror.start(), (err) => err instanceof KvstoreError && err.op === "watch");
    assert.ok(Date.now() - t0 < 2000);
    await mirror.close();
  });
});
