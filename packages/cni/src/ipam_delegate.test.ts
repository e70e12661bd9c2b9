// delegateIpam runs the real host-local plugin of Debian's
// containernetworking-plugins (it needs no root: it keeps its allocations in
// files under `dataDir`), and small executables standing in for broken
// plugins: the error JSON, garbage, a missing binary.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { delegateIpam } from "./ipam_delegate.ts";
import { CniError, type CniEnv, type NetConf } from "./spec.ts";

const CNI_BIN = "/usr/lib/cni";
const hasHostLocal = existsSync(`${CNI_BIN}/host-local`);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dp-ipam-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function envFor(command: CniEnv["command"], containerId: string, path: readonly string[]): CniEnv {
  const vars = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: "/run/netns/none",
    CNI_IFNAME: "eth0",
    CNI_PATH: path.join(":"),
  };
  return { command, containerId, netns: "/run/netns/none", ifname: "eth0", args: [], path, vars };
}

function hostLocal(subnet: string): NetConf {
  return {
    cniVersion: "1.0.0",
    name: "dpnet",
    type: "dp-cni",
    labels: ["k8s:app=web"],
    ipam: { type: "host-local", ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: join(dir, "ipam") },
  };
}

/** Writes an executable shell script into the temp dir. */
function plugin(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

describe("delegateIpam", () => {
  test.skipIf(!hasHostLocal)(
    "host-local: ADD allocates, a second container gets the next address, DEL frees",
    async () => {
      const conf = hostLocal("10.99.0.0/29");
      const path = ["/nonexistent", CNI_BIN];
      const a = await delegateIpam("ADD", conf, envFor("ADD", "ca", path));
      expect(a).toMatchObject({
        ips: [{ address: "10.99.0.2/29", gateway: "10.99.0.1" }],
        routes: [{ dst: "0.0.0.0/0" }],
      });
      const b = await delegateIpam("ADD", conf, envFor("ADD", "cb", path));
      expect(b?.ips[0]?.address).toBe("10.99.0.3/29");
      expect(readdirSync(join(dir, "ipam", "dpnet")).sort()).toContain("10.99.0.2");
      // CHECK of an allocation it holds passes; DEL returns nothing and frees the address (twice is fine).
      expect(await delegateIpam("CHECK", conf, envFor("CHECK", "ca", path))).toBeUndefined();
      expect(await delegateIpam("DEL", conf, envFor("ADD", "ca", path))).toBeUndefined(); // CNI_COMMAND is set to DEL
      expect(await delegateIpam("DEL", conf, envFor("DEL", "ca", path))).toBeUndefined();
      expect(readdirSync(join(dir, "ipam", "dpnet"))).not.toContain("10.99.0.2");
      const c = await delegateIpam("ADD", conf, envFor("ADD", "cc", path));
      expect(c?.ips[0]?.address).toBe("10.99.0.4/29"); // host-local goes round the range before reusing
    },
  );

  test.skipIf(!hasHostLocal)("host-local's error JSON becomes a CniError with its code and message", async () => {
    const conf = hostLocal("10.99.1.0/30"); // one usable address
    await delegateIpam("ADD", conf, envFor("ADD", "c1", [CNI_BIN]));
    const err = await delegateIpam("ADD", conf, envFor("ADD", "c2", [CNI_BIN])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ name: "CniError" });
    expect((err as CniError).message).toMatch(
      /^Cannot ADD through IPAM plugin "host-local": .*no IP addresses available/,
    );
    expect((err as CniError).code).toBe(999); // host-local's own code
  });

  test.skipIf(!hasHostLocal)("a 1.1.0 config goes to Debian's host-local (up to 1.0.0) as 1.0.0", async () => {
    const conf = { ...hostLocal("10.99.2.0/24"), cniVersion: "1.1.0" };
    const a = await delegateIpam("ADD", conf, envFor("ADD", "v1", [CNI_BIN]));
    expect(a).toMatchObject({ cniVersion: "1.0.0", ips: [{ address: "10.99.2.2/24" }] });
    expect(await delegateIpam("DEL", conf, envFor("DEL", "v1", [CNI_BIN]))).toBeUndefined();
    // No older version in common: the delegate's own error.
    const err = await delegateIpam("ADD", { ...conf, cniVersion: "0.3.1" }, envFor("ADD", "v2", [dir])).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 7 }); // not in this CNI_PATH
    plugin(
      "v100only",
      `if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'; exit 0; fi; echo '{"code":1,"msg":"incompatible CNI versions"}'; exit 1`,
    );
    const refused = await delegateIpam(
      "ADD",
      { ...conf, ipam: { type: "v100only" } },
      envFor("ADD", "v3", [dir]),
    ).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 1,
      message: 'Cannot ADD through IPAM plugin "v100only": incompatible CNI versions',
    });
  });

  test("the delegate gets the config on stdin and the environment with CNI_COMMAND", async () => {
    plugin(
      "echoer",
      `cat > "${dir}/stdin"; env > "${dir}/env"; echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}],"dns":{"nameservers":["10.0.0.53"]}}'`,
    );
    const conf: NetConf = { cniVersion: "1.0.0", name: "n", type: "dp-cni", ipam: { type: "echoer", extra: [1] } };
    const result = await delegateIpam("ADD", conf, envFor("ADD", "c9", [dir]));
    expect(result).toEqual({
      cniVersion: "1.0.0",
      ips: [{ address: "10.1.2.3/24" }],
      dns: { nameservers: ["10.0.0.53"] },
    });
    const { readFileSync } = await import("node:fs");
    expect(JSON.parse(readFileSync(join(dir, "stdin"), "utf8"))).toEqual(conf);
    const env = readFileSync(join(dir, "env"), "utf8");
    expect(env).toMatch(/^CNI_COMMAND=ADD$/m);
    expect(env).toMatch(/^CNI_CONTAINERID=c9$/m);
    expect(env).toMatch(/^CNI_IFNAME=eth0$/m);
  });

  test("a plugin that is not in CNI_PATH, or a bad ipam.type, is code 7 naming ipam.type", async () => {
    const conf = (type: unknown): NetConf => ({
      cniVersion: "1.0.0",
      name: "n",
      type: "dp-cni",
      ipam: { type } as never,
    });
    const missing = await delegateIpam("ADD", conf("nope-ipam"), envFor("ADD", "c", [dir])).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 7, field: "ipam.type" });
    expect((missing as Error).message).toBe(`Cannot delegate IPAM: no plugin "nope-ipam" in CNI_PATH (${dir})`);
    for (const bad of ["../bin/sh", "", 5]) {
      const err = await delegateIpam("ADD", conf(bad), envFor("ADD", "c", [dir])).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 7, field: "ipam.type" });
    }
    // A file that is not executable is not a plugin.
    writeFileSync(join(dir, "noexec"), "#!/bin/sh\n");
    expect(await delegateIpam("ADD", conf("noexec"), envFor("ADD", "c", [dir])).catch((e: unknown) => e)).toMatchObject(
      {
        code: 7,
      },
    );
  });

  test("a failing delegate without error JSON, and a result that is not one, are errors with details", async () => {
    plugin("crash", "echo 'boom' >&2; exit 3");
    plugin("garbage", "echo 'not json'");
    plugin("noips", `echo '{"cniVersion":"1.0.0","ips":[]}'`);
    const conf = (type: string): NetConf => ({ cniVersion: "1.0.0", name: "n", type: "dp-cni", ipam: { type } });
    const crash = await delegateIpam("ADD", conf("crash"), envFor("ADD", "c", [dir])).catch((e: unknown) => e);
    expect(crash).toMatchObject({ code: 5, details: "boom" });
    expect((crash as Error).message).toBe('Cannot ADD through IPAM plugin "crash": exited with status 3');
    expect(
      await delegateIpam("ADD", conf("garbage"), envFor("ADD", "c", [dir])).catch((e: unknown) => e),
    ).toMatchObject({
      code: 6,
    });
    expect(await delegateIpam("ADD", conf("noips"), envFor("ADD", "c", [dir])).catch((e: unknown) => e)).toMatchObject({
      code: 6,
      message: 'Cannot use the result of IPAM plugin "noips": it has no "ips"',
    });
    // DEL ignores what a successful delegate prints.
    expect(await delegateIpam("DEL", conf("garbage"), envFor("DEL", "c", [dir]))).toBeUndefined();
  });
});
