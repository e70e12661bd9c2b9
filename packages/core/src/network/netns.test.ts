import { afterEach, describe, expect, test } from "vitest";
import { createNetns, deleteNetns, openNetns } from "@dp/core";
import { forbiddenSys, setSys, type Sys } from "@dp/core/internal";

let saved: Sys | undefined;

afterEach(() => {
  setSys(saved);
});

describe("network namespace names", () => {
  const bad = [".", "..", "a/b", "../x", "x\u0000y", "", "x".repeat(201), "a b"];

  test.each(bad)("deleteNetns(%j) throws RangeError before any system call", (name) => {
    saved = setSys(forbiddenSys());
    expect(() => deleteNetns(name)).toThrow(RangeError);
    expect(() => deleteNetns(name)).toThrow(/Invalid network namespace name/);
  });

  test.each(bad)("openNetns(%j) and createNetns() of that name throw RangeError before any system call", (name) => {
    saved = setSys(forbiddenSys());
    expect(() => openNetns(name)).toThrow(RangeError);
    expect(() => createNetns(name)).toThrow(RangeError);
  });

  test("names with dots that are not . or .. stay valid", () => {
    saved = setSys(forbiddenSys());
    // Valid names reach the kernel: the forbidden gateway is what stops them here.
    expect(() => openNetns("a.b")).toThrow(/unexpected system call/);
    expect(() => openNetns("...")).toThrow(/unexpected system call/);
  });
});
