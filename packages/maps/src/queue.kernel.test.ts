import { beforeEach, describe, expect, test } from "vitest";
import { createMap, SyscallError } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { QueueMap, StackMap, struct, u16, u32 } from "@dp/maps";

beforeEach((t) => requireRoot(t));

const Job = struct({ id: u32, prio: u16 });

describe("QueueMap and StackMap", () => {
  test("a queue pops in FIFO order; overwrite drops the oldest when full", () => {
    using q = QueueMap.create(Job, { name: "t_queue", maxEntries: 2 });
    q.push({ id: 1, prio: 1 });
    q.push({ id: 2, prio: 2 });
    expect(() => q.push({ id: 3, prio: 3 })).toThrow(SyscallError);
    q.push({ id: 3, prio: 3 }, { overwrite: true });
    expect(q.peek()).toEqual({ id: 2, prio: 2 });
    expect([q.pop(), q.pop(), q.pop()]).toEqual([{ id: 2, prio: 2 }, { id: 3, prio: 3 }, undefined]);
  });

  test("a stack pops in LIFO order", () => {
    using s = StackMap.create(u32, { maxEntries: 4 });
    for (const n of [1, 2, 3]) s.push(n);
    expect(s.peek()).toBe(3);
    expect([s.pop(), s.pop(), s.pop(), s.pop()]).toEqual([3, 2, 1, undefined]);
  });

  test("bad values throw before the system call; the constructors check type and size; close() closes", () => {
    const q = QueueMap.create(u32, { maxEntries: 2 });
    expect(() => q.push(-1)).toThrow(/value/);
    using stack = createMap({ name: "t_stack", type: "stack", keySize: 0, valueSize: 8, maxEntries: 1 });
    expect(() => new QueueMap(stack, u32)).toThrow(/its type is stack, expected queue/);
    expect(() => new StackMap(stack, u32)).toThrow(/the value type u32 is 4 bytes, the map's values are 8 bytes/);
    q.close();
    expect(q.closed).toBe(true);
    expect(() => q.pop()).toThrow(/closed/);
  });
});
