import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeEach, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

/** Runs a script of testdata/ as user nobody without capabilities; returns the JSON of its last line. */
function unprivileged(script: string, ...args: string[]): unknown {
  return JSON.parse(unprivilegedLines(script, ...args).at(-1) as string);
}

/** Runs a script of testdata/ as user nobody without capabilities; returns its output lines. */
function unprivilegedLines(script: string, ...args: string[]): string[] {
  const out = execFileSync(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--inh-caps=-all",
      "--bounding-set=-all",
      process.execPath,
      "--conditions=@dp/source",
      "--import",
      "tsx",
      fileURLToPath(new URL(`../testdata/${script}`, import.meta.url)),
      ...args,
    ],
    { encoding: "utf8", cwd: fileURLToPath(new URL("../../..", import.meta.url)), timeout: 60_000 },
  );
  return out.trim().split("\n");
}

test("mountBpffs() run without privileges fails with EPERM and removes the directories it created", () => {
  const tmp = mkdtempSync(join(tmpdir(), "dp-unpriv-"));
  try {
    chmodSync(tmp, 0o777);
    const dir = join(tmp, "a", "b");
    const result = unprivileged("mount_bpffs.ts", dir) as {
      code: string;
      message: string;
      dir: boolean;
      parent: boolean;
    };
    expect(result.code).toBe("EPERM");
    expect(result.message).toContain(`Cannot mount bpffs at "${dir}"`);
    expect(result).toMatchObject({ dir: false, parent: false });
    expect(existsSync(join(tmp, "a"))).toBe(false);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("createMap() run without privileges fails with EPERM and a hint naming CAP_BPF", () => {
  const result = unprivileged("create_map.ts") as { code: string; hint: string; message: string };
  expect(result.code).toBe("EPERM");
  expect(result.hint).toMatch(/run as root or grant CAP_BPF/);
  expect(result.message).toMatch(/^Cannot create hash map "unpriv": EPERM \(operation not permitted\): run as root/);
});

test("probes, object loads and object reads run without privileges say EPERM with a hint or ENOENT, not that a feature is missing", () => {
  const object = fileURLToPath(new URL("../../../bpf/build/testdata/globals.o", import.meta.url));
  const results = unprivilegedLines("probe_unprivileged.ts", object).map(
    (line) => JSON.parse(line) as { what: string; name: string; code?: string; hint?: string; message: string },
  );
  const by = Object.fromEntries(results.map((r) => [r.what, r]));
  expect(by["probe"]).toMatchObject({ name: "SyscallError", code: "EPERM" });
  expect(by["probe"]?.hint).toMatch(/root|CAP_BPF/);
  expect(by["load"]).toMatchObject({ name: "SyscallError", code: "EPERM" });
  expect(by["load"]?.hint).toMatch(/root|CAP_BPF/);
  expect(by["load"]?.message).not.toMatch(/^Cannot detect support for BTF/);
  expect(by["missing"]).toMatchObject({ name: "SyscallError", code: "ENOENT" });
  expect(by["missing"]?.message).toBe(`Cannot read BPF object "${object}.missing": ENOENT (no such file or directory)`);
});
