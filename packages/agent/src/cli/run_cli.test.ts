import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { commandPaths } from "./completion.ts";
import { createProgram } from "./program.ts";
import { runCli } from "./run_cli.ts";

const dir = mkdtempSync(join(tmpdir(), "dp-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env,
  });
  return { code, out, err };
}

describe("runCli()", () => {
  test("runCli() prints help with the exit codes and returns 0 for --help on every command", async () => {
    const top = await run(["--help"]);
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/^Usage: dp /);
    expect(top.out).toMatch(/^ {2}3 {4}the agent is not reachable/m);
    const { program } = createProgram();
    for (const { path } of commandPaths(program)) {
      const r = await run([...path, "--help"]);
      expect(r.code, path.join(" ")).toBe(0);
      expect(r.out).toMatch(new RegExp(`^Usage: dp ${path.join(" ")}`));
    }
  });

  test("runCli() returns 2 for unknown commands, options and missing arguments", async () => {
    for (const argv of [
      ["nosuch"],
      ["status", "--nosuch"],
      ["endpoint", "get"],
      ["bpf"],
      ["policy", "trace", "--src", "1"],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err).toMatch(/dp: |Usage: dp/);
    }
  });

  test("runCli() returns 3 naming the socket and what to do when no agent listens", async () => {
    const socket = join(dir, "none.sock");
    const r = await run(["--socket", socket, "identity", "list"]);
    expect(r.code).toBe(3);
    expect(r.err).toBe(
      `dp: Cannot reach the dp agent at ${JSON.stringify(socket)}: ENOENT (no such socket): start the agent with \`dp agent\`, or pass --socket PATH\n`,
    );
  });

  test("runCli() takes the socket from DP_SOCKET", async () => {
    const socket = join(dir, "env.sock");
    const r = await run(["identity", "get", "1"], { DP_SOCKET: socket });
    expect(r.code).toBe(3);
    expect(r.err).toContain(JSON.stringify(socket));
  });

  test("runCli() returns 2 for a policy file it cannot read, before asking the agent", async () => {
    const r = await run(["--socket", join(dir, "x.sock"), "policy", "import", join(dir, "missing.yaml")]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dp: Cannot read policy file ".*missing.yaml": ENOENT/);
    expect(r.err).toMatch(/^hint: /m);
  });

  test("runCli() returns 2 naming the key for a bad config of `dp agent`, before touching the kernel", async () => {
    const r = await run(["agent", "--bpf-ct-global-tcp-max", "12", "--cluster-id", "300"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dp: Invalid config: .*bpf-ct-global-tcp-max: /m);
    expect(r.err).toMatch(/cluster-id/);
    expect(r.err).toMatch(/^hint: /m);
  });

  test("runCli() returns 2 for a config file that does not exist", async () => {
    const r = await run(["--config", join(dir, "missing.yaml"), "agent"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/missing\.yaml/);
  });

  test("runCli() takes the socket from --config before DP_SOCKET, and --socket before both", async () => {
    const config = join(dir, "config.yaml");
    writeFileSync(config, `socket-path: ${join(dir, "from-config.sock")}\n`);
    const fromConfig = await run(["--config", config, "identity", "list"], { DP_SOCKET: join(dir, "env.sock") });
    expect(fromConfig.code).toBe(3);
    expect(fromConfig.err).toContain("from-config.sock");
    const fromOption = await run(["--config", config, "--socket", join(dir, "opt.sock"), "identity", "list"]);
    expect(fromOption.err).toContain("opt.sock");
  });

  test("`dp config check` prints the effective config, warns of unknown keys, and returns 2 for contradictions", async () => {
    const good = join(dir, "good.yaml");
    writeFileSync(good, "cluster-name: c1\nfoo: 1\n");
    const ok = await run(["--config", good, "config", "check", "--json"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ "cluster-name": "c1", "enable-ipv4": true });
    expect(ok.err).toBe('dp: warning: foo: unknown key "foo"\n');
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "tunnel: vxlan\nrouting-mode: native\n");
    const r = await run(["--config", bad, "config", "check"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dp: .*tunnel/m);
    expect((await run(["config", "check"])).code).toBe(2);
  });
});
