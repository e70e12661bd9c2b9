import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeEach, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

test("createMap() run without privileges fails with EPERM and a hint naming CAP_BPF", () => {
  const script = fileURLToPath(new URL("../testdata/create_map.ts", import.meta.url));
  const out = execFileSync(
    "setpriv",
    [
      "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
      process.execPath, "--conditions=@dp/source", "--import", "tsx", script,
    ],
    { encoding: "utf8", cwd: fileURLToPath(new URL("../../..", import.meta.url)), timeout: 60_000 },
  );
  const result = JSON.parse(out.trim().split("\n").at(-1) as string) as { code: string; hint: string; message: string };
  expect(result.code).toBe("EPERM");
  expect(result.hint).toMatch(/run as root or grant CAP_BPF/);
  expect(result.message).toMatch(/^Cannot create hash map "unpriv": EPERM \(operation not permitted\): run as root/);
});
