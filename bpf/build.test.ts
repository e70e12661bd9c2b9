import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const EM_BPF = 247;

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory() && e.name !== "include" && e.name !== "build") walk(rel);
      else if (e.name.endsWith(".c")) out.push(rel);
    }
  };
  walk("bpf");
  return out;
}

const hasClang = spawnSync("clang-19", ["--version"]).status === 0;

describe("bpf/build.sh", () => {
  test.skipIf(!hasClang)(
    "builds every source into a BPF ELF object, byte for byte the same twice",
    () => {
      const copyA = mkdtempSync(join(tmpdir(), "dp-bpf-a-"));
      const copyB = mkdtempSync(join(tmpdir(), "dp-bpf-b-"));
      try {
        // Build from two different checkouts: no absolute path may leak into the objects.
        for (const dir of [copyA, copyB]) {
          execFileSync("cp", ["-r", join(root, "bpf"), dir]);
          rmSync(join(dir, "bpf/build"), { recursive: true, force: true });
          execFileSync("bash", [join(dir, "bpf/build.sh")], { stdio: "pipe" });
        }
        for (const src of sources()) {
          const obj = src.replace(/^bpf\//, "bpf/build/").replace(/\.c$/, ".o");
          const a = readFileSync(join(copyA, obj));
          const b = readFileSync(join(copyB, obj));
          expect(a.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
          expect(a.readUInt16LE(18)).toBe(EM_BPF);
          expect(a.equals(b)).toBe(true);
          expect(a.includes(Buffer.from(copyA))).toBe(false);
        }
      } finally {
        rmSync(copyA, { recursive: true, force: true });
        rmSync(copyB, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
