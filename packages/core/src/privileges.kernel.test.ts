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
  return JSON.parse(out.trim().split("\n").at(-1) as string);
}

test("mountBpffs() run without privileges fails with EPERM and removes the directories it created", () => {
  const tmp = mkdtempSync(join(tmpdir(), "dp-unpriv-"));
  try {
    chmodSync(tmp, 0o777);
    const dir = join(tmp, "a", "b");
    const result = unprivileged("mount_bpffs.ts", dir) as { code: string; message: string; dir: boolean; parent: boolean };
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
