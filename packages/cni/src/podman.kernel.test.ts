// A real runtime: Debian 12's podman (4.3, CNI network backend) runs two
// containers on a dp network. Everything podman has is private to the test:
// `--root`, `--runroot`, `--tmpdir`, a containers.conf whose
// `cni_plugin_dirs` holds dp-cni (a wrapper that execs node on
// bin/dp-cni.mjs) and a CNI config dir with the network's conflist. The
// image is a busybox-static rootfs imported from a tarball (no pulls).
// podman runs inside a "node" network namespace (nsenter --net), so its
// plugins create the containers' veths there and nothing touches the
// host's interfaces; the agent's node lives in that namespace too.
//
// Two workarounds for this machine, both confined to podman's own
// processes:
// - crun refuses "cgroups in hybrid mode" while a cgroup2 hierarchy with
//   controllers is mounted at /sys/fs/cgroup/unified next to the v1
//   controllers: podman runs in a private mount namespace
//   (`unshare --mount --propagation unchanged`) that unmounts it. Mounts
//   under /run/netns (shared) still propagate, so the agent sees the
//   containers' namespaces podman creates there.
// - podman's default RLIMIT_NOFILE/RLIMIT_NPROC (1048576) are above this
//   machine's hard limits (setrlimit EPERM): the containers get
//   `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiClient } from "@dp/agent/client";
import { bpffsDir, netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { beforeEach, describe, expect, test } from "vitest";
import { HAS_DEBIAN_PLUGINS, makeCniBin, startTestAgent } from "./_test_runtime.ts";

beforeEach((t) => requireRoot(t));

const HAS_PODMAN = existsSync("/usr/bin/podman") && existsSync("/bin/busybox") && HAS_DEBIAN_PLUGINS;
const DP_BIN = fileURLToPath(new URL("../../agent/bin/dp.mjs", import.meta.url));
const IMAGE = "localhost/dp-busybox:test";
const ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 60_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A busybox-static rootfs as a tarball: busybox, its applets, a page for httpd. */
function busyboxTarball(dir: string): Promise<Run> {
  const root = join(dir, "rootfs");
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "www"])
    mkdirSync(join(root, d), { recursive: true });
  symlinkSync("busybox", join(root, "bin", "sh"));
  for (const applet of ["httpd", "nc", "sleep", "ip", "cat", "ls"]) symlinkSync("busybox", join(root, "bin", applet));
  writeFileSync(join(root, "www", "index.html"), "hello from dp\n");
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
  return run("cp", ["/bin/busybox", join(root, "bin", "busybox")]).then(() =>
    run("tar", ["-C", root, "-cf", join(dir, "rootfs.tar"), "."]),
  );
}

/** podman with its own storage, state, config and CNI dirs, in the node namespace and a private mount namespace. */
class Podman {
  readonly #wrapper: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(dir: string, node: TestNetns, cniBin: string, cniConf: string) {
    const conf = join(dir, "containers.conf");
    writeFileSync(
      conf,
      [
        "[engine]",
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = ${JSON.stringify(join(dir, "events.log"))}`,
        "[network]",
        'network_backend = "cni"',
        `cni_plugin_dirs = [${JSON.stringify(cniBin)}]`,
        `network_config_dir = ${JSON.stringify(cniConf)}`,
        "",
      ].join("\n"),
    );
    const podman = [
      "podman",
      `--root=${join(dir, "root")}`,
      `--runroot=${join(dir, "runroot")}`,
      `--tmpdir=${join(dir, "tmp")}`,
      "--storage-driver=vfs",
      `--cni-config-dir=${cniConf}`,
      "--network-backend=cni",
      "--events-backend=file",
    ];
    this.#wrapper = join(dir, "podman.sh");
    writeFileSync(
      this.#wrapper,
      `#!/bin/sh\n# In this private mount namespace only: crun refuses hybrid cgroups.\nif [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then umount /sys/fs/cgroup/unified; fi\nexec nsenter --net=/run/netns/${node.name} ${podman.join(" ")} "$@"\n`,
    );
    chmodSync(this.#wrapper, 0o755);
    this.#env = { ...process.env, CONTAINERS_CONF: conf };
  }

  async run(...args: string[]): Promise<Run> {
    return run("unshare", ["--mount", "--propagation", "unchanged", this.#wrapper, ...args], this.#env);
  }

  async ok(...args: string[]): Promise<string> {
    const r = await this.run(...args);
    if (r.code !== 0) throw new Error(`podman ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  }
}

describe("podman with the CNI backend on a dp network", () => {
  test.skipIf(!HAS_PODMAN)(
    "two containers reach each other, a policy denies one direction, dp lists them, podman rm leaves no trace",
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), "dp-podman-"));
      using bpf = bpffsDir();
      using node = netns({ label: "dppmnode" });
      // A /29: the router (.1) and five pod addresses, so reuse after removal can be proven.
      const agent = await startTestAgent(node.name, bpf.path, join(tmp, "run"), { "ipv4-range": "10.240.0.0/29" });
      const extra: TestNetns[] = [];
      let podman: Podman | undefined;
      try {
        const client = new ApiClient({ socketPath: agent.socketPath });
        const cniConf = join(tmp, "cni-conf");
        mkdirSync(cniConf);
        writeFileSync(
          join(cniConf, "dpnet.conflist"),
          JSON.stringify({
            cniVersion: "1.0.0",
            name: "dpnet",
            plugins: [
              { type: "dp-cni", socketPath: agent.socketPath, labels: { "k8s:net": "dp", "k8s:team": "shop" } },
            ],
          }),
        );
        const pm = new Podman(tmp, node, makeCniBin(tmp), cniConf);
        podman = pm;
        expect((await busyboxTarball(tmp)).code).toBe(0);
        await pm.ok("import", join(tmp, "rootfs.tar"), IMAGE);

        // Two containers serving a page over busybox httpd.
        const ids: Record<string, string> = {};
        const httpd = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"];
        for (const name of ["web", "client"])
          ids[name] = await pm.ok("run", "-d", "--name", name, "--network", "dpnet", ...ULIMITS, IMAGE, ...httpd);
        const eps = await client.endpoints();
        expect(eps.map((e) => e.containerId).sort()).toEqual([ids.web, ids.client].sort());
        const ep = (name: string): (typeof eps)[number] => {
          const found = eps.find((e) => e.containerId === ids[name]);
          if (found === undefined) throw new Error(`no endpoint for ${name}`);
          return found;
        };
        expect(ep("web").labels).toEqual([
          "cni:network=dpnet",
          "k8s:io.kubernetes.pod.name=web",
          "k8s:net=dp",
          "k8s:team=shop",
        ]);
        expect(ep("web").identity).not.toBe(ep("client").identity);
        expect([ep("web").ipv4, ep("client").ipv4].sort()).toEqual(["10.240.0.2", "10.240.0.3"]);
        // podman read dp-cni's result: the address it reports is the endpoint's.
        const inspected = JSON.parse(
          await pm.ok("inspect", "web", "--format", "{{json .NetworkSettings.Networks}}"),
        ) as Record<string, { IPAddress: string }>;
        expect(inspected.dpnet?.IPAddress).toBe(ep("web").ipv4);
        const sandboxes = await Promise.all(
          ["web", "client"].map((n) => pm.ok("inspect", n, "--format", "{{.NetworkSettings.SandboxKey}}")),
        );
        expect(sandboxes.map((p) => existsSync(p))).toEqual([true, true]);
        expect(eps.map((e) => e.netns).sort()).toEqual([...sandboxes].sort());

        // They reach each other: an HTTP GET with busybox nc from inside the containers (Debian 12's
        // busybox-static wget dies with SIGSEGV here, exit 139, even for a literal address).
        const get = (from: string, to: string): Promise<Run> =>
          pm.run("exec", from, "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ep(to).ipv4} 8080`);
        const PAGE = /^HTTP\/1\.[01] 200 OK\r\n[\s\S]*\r\n\r\nhello from dp\n$/;
        expect(await get("client", "web")).toMatchObject({ code: 0, stdout: expect.stringMatching(PAGE) });
        expect(await get("web", "client")).toMatchObject({ code: 0, stdout: expect.stringMatching(PAGE) });

        // A policy denies client -> web; web -> client still works.
        await client.importPolicy({
          rules: [
            {
              name: "web-deny-client",
              endpointSelector: { matchLabels: { "io.kubernetes.pod.name": "web" } },
              ingressDeny: [{ fromEndpoints: [{ matchLabels: { "io.kubernetes.pod.name": "client" } }] }],
            },
          ],
        });
        const denied = await get("client", "web");
        expect(denied.stdout).toBe("");
        expect(denied.stderr).toMatch(/nc: timed out/); // dropped, not refused
        expect(await get("web", "client")).toMatchObject({ code: 0, stdout: expect.stringMatching(PAGE) });
        const drops = (await client.metrics()).filter((m) => m.reasonName === "policy-denied");
        expect(drops.reduce((n, m) => n + BigInt(m.packets), 0n)).toBeGreaterThan(0n);

        // `dp endpoint list` shows both with their labels and identities.
        const listed = await run(process.execPath, [DP_BIN, "--socket", agent.socketPath, "endpoint", "list"], {
          ...process.env,
          DP_FROM_SOURCE: "1",
        });
        expect(listed.code).toBe(0);
        for (const name of ["web", "client"]) {
          expect(listed.stdout).toContain(`k8s:io.kubernetes.pod.name=${name}`);
          expect(listed.stdout).toMatch(new RegExp(`\\b${ep(name).identity}\\b`));
        }

        // podman rm: no endpoint, no veth or route in the node namespace, the containers' namespaces gone.
        await pm.ok("rm", "-f", "-t", "0", "web", "client");
        expect(await client.endpoints()).toEqual([]);
        expect(node.exec("ip", ["-o", "link"]).trim().split("\n")).toEqual([expect.stringMatching(/^1: lo:/)]);
        expect(node.exec("ip", ["-4", "route"]).trim()).toBe("");
        expect(sandboxes.map((p) => existsSync(p))).toEqual([false, false]);
        // The addresses are back in the pool: all five of the /29 can be handed out again.
        for (let i = 0; i < 5; i++) {
          const ns = netns({ label: "dppmx" });
          extra.push(ns);
          await client.createEndpoint({ netns: ns.name, labels: ["k8s:app=filler"] });
        }
        expect((await client.endpoints()).map((e) => e.ipv4).sort()).toEqual([
          "10.240.0.2",
          "10.240.0.3",
          "10.240.0.4",
          "10.240.0.5",
          "10.240.0.6",
        ]);
      } finally {
        if (podman !== undefined) await podman.run("rm", "-a", "-f", "-t", "0");
        await agent.close({ teardown: true });
        for (const ns of extra) ns.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
