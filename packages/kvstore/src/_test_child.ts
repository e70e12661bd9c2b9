// A node in its own process for tests that kill it: it opens a kvstore,
// registers its node record, publishes ipcache entries and allocates
// identities as its JSON argument says, prints "ready" and waits to be
// killed. Start it with startChildNode().
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createKvstoreIdentityAllocator } from "./identities.ts";
import { type LocalIpcacheEntry, openIpcacheSync } from "./ipcache.ts";
import { openKvstore } from "./kvstore.ts";
import { type KvstoreNode, openNodeRegistry } from "./nodes.ts";

/** What the child does. */
export interface ChildNodeSpec {
  endpoints: readonly string[];
  nodeName: string;
  leaseTtl: number;
  node?: KvstoreNode;
  ipcache?: Array<[string, LocalIpcacheEntry]>;
  identities?: string[][];
}

/** A running child node. */
export interface ChildNode {
  readonly proc: ChildProcess;
  /** The identities it allocated, in the order of the spec. */
  readonly identities: number[];
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a child node and waits until it has done its work. */
export async function startChildNode(spec: ChildNodeSpec): Promise<ChildNode> {
  const file = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, ["--conditions=@dp/source", "--import", "tsx", file, JSON.stringify(spec)], {
    // The child exits when its stdin closes, so it never outlives this process.
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const identities = await new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`child node ${spec.nodeName} not ready: ${err}`));
    }, 30_000);
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^ready (.*)$/m.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1] as string) as number[]);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child node ${spec.nodeName} exited with ${String(code)}: ${err}`));
    });
  });
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
  };
  return { proc, identities, kill, [Symbol.asyncDispose]: kill };
}

async function main(spec: ChildNodeSpec): Promise<void> {
  const kv = await openKvstore({ endpoints: spec.endpoints }, { nodeName: spec.nodeName, leaseTtl: spec.leaseTtl });
  if (spec.node !== undefined) await (await openNodeRegistry(kv)).register(spec.node);
  const sync = await openIpcacheSync(kv, { upsert: () => undefined, delete: () => undefined });
  for (const [prefix, entry] of spec.ipcache ?? []) await sync.publish(prefix, entry);
  const ids: number[] = [];
  if (spec.identities !== undefined) {
    const alloc = await createKvstoreIdentityAllocator(kv, { gcInterval: 0 });
    for (const labels of spec.identities) ids.push((await alloc.allocate(labels)).id);
  }
  process.stdout.write(`ready ${JSON.stringify(ids)}\n`);
  // Live until the parent goes (stdin closes) or kills this process.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(JSON.parse(process.argv[2] as string) as ChildNodeSpec).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
