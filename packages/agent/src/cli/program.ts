import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { PinnedNode, PolicyMapEntry } from "@dp/datapath";
import { ApiClient } from "../api/client.ts";
import { AgentUnreachableError } from "../api/errors.ts";
import type { AgentStatus, ApiEndpoint, ApiPolicy, ApiPolicyMapEntry, MonitorLine } from "../api/types.ts";
import { startAgent } from "../agent/agent.ts";
import { createLogger } from "../agent/logger.ts";
import { renderConfigDocs } from "../config/config_docs.ts";
import { CONFIG_KEYS } from "../config/config_keys.ts";
import { loadConfig } from "../config/load_config.ts";
import { resolveConfig } from "../config/resolve_config.ts";
import { formatConnectivityReport } from "../connectivity/report.ts";
import { runConnectivityTest } from "../connectivity/run.ts";
import { runDemo, teardownDemo } from "../demo/demo.ts";
import { CliError, EXIT, usageError } from "./_errors.ts";
import {
  formatConntrack,
  formatEndpoint,
  formatEndpoints,
  formatIdentities,
  formatIdentity,
  formatIpcache,
  formatMetrics,
  formatMonitorLine,
  formatPinnedStatus,
  formatPolicy,
  formatPolicyMap,
  formatStatus,
  formatTrace,
  keyValues,
  type PinnedStatus,
} from "./_format.ts";
import {
  type ConntrackOptions,
  parseConntrackFilter,
  parseDport,
  parseEndpointId,
  parseIdentity,
  parseMonitorTypes,
  parsePolicyFile,
  parseTraceSide,
} from "./_parse.ts";
import { fromAgentOrPins, type Places, toWire } from "./_sources.ts";
import { bashCompletion, zshCompletion } from "./completion.ts";

/**
 * Where `runCli` writes, the environment it reads (`DP_SOCKET`,
 * `DP_BPF_ROOT`), and the signal that interrupts long-running commands.
 *
 * @example Capturing the output of a command
 * ```ts no-run
 * import { runCli, type CliIo } from "@dp/agent";
 * let out = "";
 * const io: CliIo = { stdout: { write: (t: string) => (out += t) }, env: { DP_SOCKET: "/run/dp-test/dp.sock" } };
 * const code = await runCli(["endpoint", "list", "--json"], io);
 * if (code === 0) console.log(JSON.parse(out));
 * ```
 */
export interface CliIo {
  /**
   * Standard output.
   *
   * @default process.stdout
   */
  readonly stdout?: {
    /** Writes command output. */
    write(text: string): unknown;
  };
  /**
   * Standard error.
   *
   * @default process.stderr
   */
  readonly stderr?: {
    /** Writes errors, warnings and progress messages. */
    write(text: string): unknown;
  };
  /**
   * The environment (`DP_SOCKET`, `DP_BPF_ROOT`).
   *
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Ends long-running commands (`dp monitor`, `dp agent`) as Ctrl-C does: they return 130.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
}

/** The exit code a command's action left, and the streams. */
interface Session {
  readonly out: { write(text: string): unknown };
  readonly err: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly signal: AbortSignal;
  exitCode: number;
}

/** The default socket, as the agent's config has it. */
export const DEFAULT_SOCKET = "/var/run/dp/dp.sock";
/** The default bpffs root; the node's state is in `<bpf-root>/dp`. */
export const DEFAULT_BPF_ROOT = "/sys/fs/bpf";

const EXIT_CODES_HELP = `
Exit codes:
  0    ok
  1    the operation failed (kernel or API error, a scenario differed)
  2    bad usage or bad config
  3    the agent is not reachable (for commands that need it)
  130  interrupted (SIGINT)

Commands that read maps (status, endpoint, policy get, bpf ...) read the
node's pins in <bpf-root>/dp when no agent answers.`;

interface GlobalOptions {
  readonly socket?: string;
  readonly bpfRoot?: string;
  readonly config?: string;
}

function places(cmd: Command, s: Session): Places {
  // The option, else the config file given, else the environment, else the default.
  const g = cmd.optsWithGlobals<GlobalOptions>();
  let socketPath = g.socket;
  let bpfRoot = g.bpfRoot;
  if (g.config !== undefined && (socketPath === undefined || bpfRoot === undefined)) {
    const { config } = loadConfig({ file: g.config });
    socketPath ??= config["socket-path"];
    bpfRoot ??= config["bpf-root"];
  }
  socketPath ??= s.env.DP_SOCKET ?? DEFAULT_SOCKET;
  bpfRoot ??= s.env.DP_BPF_ROOT ?? DEFAULT_BPF_ROOT;
  return { socketPath, stateDir: `${bpfRoot}/dp` };
}

function client(cmd: Command, s: Session): ApiClient {
  return new ApiClient({ socketPath: places(cmd, s).socketPath });
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** `--json` on a command that prints data. */
function jsonOption(cmd: Command): Command {
  return cmd.option("--json", "print JSON instead of a table");
}

function policyEntryToWire(e: readonly PolicyMapEntry[]): ApiPolicyMapEntry[] {
  return e.map((x) => ({
    direction: x.egress ? "egress" : "ingress",
    identity: x.identity,
    protocol: x.protocol,
    port: x.port,
    prefixLength: x.prefixLength,
    deny: x.deny,
    proxyPort: x.proxyPort,
    ruleCookie: x.ruleCookie,
    packets: String(x.packets),
    bytes: String(x.bytes),
  }));
}

function pinnedEndpoints(p: PinnedNode): ApiEndpoint[] {
  return p.endpoints().map((e) => ({ ...toWire(e), containerId: undefined }));
}

function pinnedStatus(p: PinnedNode): PinnedStatus {
  const info = p.info();
  return {
    stateDir: p.stateDir,
    hostRouting: info?.hostRouting,
    uplink: info?.uplink,
    maps: p.maps(),
    endpoints: p.endpoints().length,
    rules: p.rules().length,
    encryption: p.encryption(),
  };
}

function conntrackOptions(cmd: Command): Command {
  return cmd
    .option("--family <4|6>", "only this address family")
    .option("--protocol <name>", "only this protocol: TCP, UDP, SCTP, ICMP, ICMPv6 or a number")
    .option("--address <ip|cidr>", "either side's address in this address or prefix")
    .option("--saddr <ip|cidr>", "the initiator's address")
    .option("--daddr <ip|cidr>", "the responder's address")
    .option("--port <n>", "either side's port")
    .option("--sport <n>", "the initiator's port")
    .option("--dport <n>", "the responder's port")
    .option("--scope <ingress|egress>", "the policy scope of the entry")
    .option("--endpoint <id>", "the addresses of this endpoint (needs the agent)");
}

function regex(text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (err) {
    throw usageError(`Invalid --test ${JSON.stringify(text)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A connection that broke midway (the agent stopped while streaming). */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return (
    typeof code === "string" &&
    ["ECONNRESET", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE", "ECONNREFUSED", "ENOENT"].includes(code)
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Builds the `dp` command tree (commander) writing to a session. Used by
 * `runCli` and, through {@link commandPaths}, by the completion scripts
 * and the docs check.
 */
function build(s: Session): Command {
  const program = new Command("dp")
    .description("dp: the agent of the dp datapath and its command-line client")
    .option("--socket <path>", `the agent's API socket (env DP_SOCKET; default ${DEFAULT_SOCKET})`)
    .option(
      "--bpf-root <dir>",
      `bpffs root of the node's pins, read when no agent answers (env DP_BPF_ROOT; default ${DEFAULT_BPF_ROOT})`,
    )
    .option(
      "--config <file>",
      "the agent's config file (YAML or JSON): its socket-path and bpf-root, and for `dp agent` everything",
    )
    .addHelpText("after", EXIT_CODES_HELP)
    .showHelpAfterError("hint: add --help to the command for its usage")
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false });

  // --- status ---------------------------------------------------------------
  jsonOption(
    program
      .command("status")
      .description("show the agent's and the datapath's state (like `cilium status`)")
      .option("--verbose", "every map, controller and counter"),
  ).action(async (o: { json?: boolean; verbose?: boolean }, cmd: Command) => {
    const p = places(cmd, s);
    const r = await fromAgentOrPins<{ agent?: AgentStatus; pinned?: PinnedStatus }>(
      p,
      async (c) => ({ agent: await c.status() }),
      (pins) => ({ pinned: pinnedStatus(pins) }),
    );
    const { agent, pinned } = r.value;
    if (agent !== undefined) {
      s.out.write(o.json === true ? json(agent) : formatStatus(agent, o.verbose === true));
      return;
    }
    if (pinned === undefined) return;
    const why = r.agentError?.message ?? "no agent";
    s.out.write(
      o.json === true ? json({ agent: { reachable: false, error: why }, pinned }) : formatPinnedStatus(pinned, why),
    );
    s.exitCode = EXIT.unreachable;
  });

  // --- endpoint -------------------------------------------------------------
  const endpoint = program.command("endpoint").description("list and inspect endpoints (pods)");
  jsonOption(endpoint.command("list").description("list the endpoints")).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const r = await fromAgentOrPins(places(cmd, s), (c) => c.endpoints(), pinnedEndpoints);
      s.out.write(o.json === true ? json(r.value) : formatEndpoints(r.value));
    },
  );
  jsonOption(endpoint.command("get").description("show one endpoint").argument("<id>", "the endpoint id")).action(
    async (idText: string, o: { json?: boolean }, cmd: Command) => {
      const id = parseEndpointId(idText);
      const r = await fromAgentOrPins(
        places(cmd, s),
        (c) => c.endpoint(id),
        (p) => {
          const ep = pinnedEndpoints(p).find((e) => e.id === id);
          if (ep === undefined)
            throw new CliError(
              `Cannot get endpoint ${id}: no such endpoint`,
              EXIT.failed,
              "list them with `dp endpoint list`",
            );
          return ep;
        },
      );
      s.out.write(o.json === true ? json(r.value) : formatEndpoint(r.value));
    },
  );

  // --- identity -------------------------------------------------------------
  const identity = program.command("identity").description("list and inspect security identities");
  jsonOption(identity.command("list").description("list the identities in use")).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const ids = await client(cmd, s).identities();
      s.out.write(o.json === true ? json(ids) : formatIdentities(ids));
    },
  );
  jsonOption(identity.command("get").description("show one identity").argument("<id>", "the numeric identity")).action(
    async (idText: string, o: { json?: boolean }, cmd: Command) => {
      const id = await client(cmd, s).identity(parseIdentity(idText));
      s.out.write(o.json === true ? json(id) : formatIdentity(id));
    },
  );

  // --- policy ---------------------------------------------------------------
  const policy = program.command("policy").description("manage and trace the policy rules");
  jsonOption(policy.command("get").description("print the rules (JSON) and the revision")).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const r = await fromAgentOrPins(
        places(cmd, s),
        (c) => c.policy(),
        (p): ApiPolicy => ({ revision: 0, rules: p.rules() }),
      );
      s.out.write(o.json === true ? json(r.value) : formatPolicy(r.value));
    },
  );
  jsonOption(
    policy
      .command("import")
      .description("add the rules of a JSON or YAML file (a rule of the same name is replaced)")
      .argument("<file>", "the file; - reads standard input")
      .option("--replace", "replace every rule instead of adding"),
  ).action(async (file: string, o: { json?: boolean; replace?: boolean }, cmd: Command) => {
    let text: string;
    try {
      text = readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (err) {
      throw usageError(
        `Cannot read policy file ${JSON.stringify(file)}: ${err instanceof Error ? err.message : String(err)}`,
        "pass a readable JSON or YAML file",
      );
    }
    const rules = parsePolicyFile(text, file);
    const result = await client(cmd, s).importPolicy({ rules, ...(o.replace === true ? { replace: true } : {}) });
    s.out.write(o.json === true ? json(result) : `Imported ${rules.length} rules; revision ${result.revision}\n`);
  });
  jsonOption(
    policy
      .command("delete")
      .description("delete rules by name, or all with --all")
      .argument("[names...]", "the rule names")
      .option("--all", "delete every rule"),
  ).action(async (names: string[], o: { json?: boolean; all?: boolean }, cmd: Command) => {
    if (names.length === 0 && o.all !== true)
      throw usageError("Cannot delete rules: name them or pass --all", "see `dp policy get` for the names");
    if (names.length > 0 && o.all === true) throw usageError("Cannot delete rules: pass names or --all, not both");
    const result = await client(cmd, s).deletePolicy(names);
    s.out.write(
      o.json === true ? json(result) : `Deleted; ${result.rules.length} rules left, revision ${result.revision}\n`,
    );
  });
  jsonOption(
    policy
      .command("trace")
      .description("would traffic from --src to --dst be allowed, and by which rule")
      .requiredOption("--src <who>", "the source: an endpoint id, identity:N, or labels (k8s:app=client,...)")
      .requiredOption("--dst <who>", "the destination, same forms")
      .option("--dport <port/proto>", "the destination port and protocol (80/TCP); default any"),
  ).action(async (o: { json?: boolean; src: string; dst: string; dport?: string }, cmd: Command) => {
    const port = o.dport === undefined ? undefined : parseDport(o.dport);
    const t = await client(cmd, s).tracePolicy({
      from: parseTraceSide(o.src, "--src"),
      to: parseTraceSide(o.dst, "--dst"),
      ...(port === undefined ? {} : { port: port.port, protocol: port.protocol }),
    });
    s.out.write(o.json === true ? json(t) : formatTrace(t));
  });

  // --- bpf ------------------------------------------------------------------
  const bpf = program.command("bpf").description("read the datapath's BPF maps (from the pins when no agent runs)");
  const ct = bpf.command("ct").description("the conntrack maps");
  jsonOption(
    conntrackOptions(ct.command("list").description("list conntrack entries (like `cilium bpf ct list global`)")),
  ).action(async (o: ConntrackOptions & { json?: boolean }, cmd: Command) => {
    const filter = parseConntrackFilter(o);
    const { endpoint: _e, ...pinFilter } = filter;
    const r = await fromAgentOrPins(
      places(cmd, s),
      (c) => c.conntrack(filter),
      (p) => {
        if (filter.endpoint !== undefined)
          throw usageError("Cannot filter by --endpoint without the agent", "use --address with the endpoint's IP");
        return toWire(p.listConntrack(pinFilter));
      },
    );
    s.out.write(o.json === true ? json(r.value) : formatConntrack(r.value, process.hrtime.bigint()));
  });
  jsonOption(
    conntrackOptions(ct.command("flush").description("delete conntrack entries (all without a filter)")),
  ).action(async (o: ConntrackOptions & { json?: boolean }, cmd: Command) => {
    const filter = parseConntrackFilter(o);
    const { endpoint: _e, ...pinFilter } = filter;
    const r = await fromAgentOrPins(
      places(cmd, s),
      (c) => c.flushConntrack(filter),
      (p) => {
        if (filter.endpoint !== undefined)
          throw usageError("Cannot filter by --endpoint without the agent", "use --address with the endpoint's IP");
        return p.flushConntrack(pinFilter);
      },
    );
    s.out.write(
      o.json === true
        ? json(r.value)
        : `Deleted ${r.value.tcp + r.value.any} entries (dp_ct_tcp ${r.value.tcp}, dp_ct_any ${r.value.any})\n`,
    );
  });
  const bpfPolicy = bpf.command("policy").description("the per-endpoint policy maps");
  jsonOption(
    bpfPolicy
      .command("get")
      .description("list an endpoint's policy map entries with their counters")
      .argument("<endpoint>", "the endpoint id"),
  ).action(async (idText: string, o: { json?: boolean }, cmd: Command) => {
    const id = parseEndpointId(idText);
    const r = await fromAgentOrPins(
      places(cmd, s),
      (c) => c.policyMap(id),
      (p) => {
        const entries = p.policyMap(id);
        if (entries === undefined)
          throw new CliError(
            `Cannot get the policy map of endpoint ${id}: no such endpoint`,
            EXIT.failed,
            "list them with `dp endpoint list`",
          );
        return policyEntryToWire(entries);
      },
    );
    s.out.write(o.json === true ? json(r.value) : formatPolicyMap(r.value));
  });
  const ipcache = bpf.command("ipcache").description("the ipcache: prefix → security identity");
  jsonOption(ipcache.command("list").description("list the ipcache entries")).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const r = await fromAgentOrPins(
        places(cmd, s),
        (c) => c.ipcache(),
        (p) => p.ipcache(),
      );
      s.out.write(o.json === true ? json(r.value) : formatIpcache(r.value));
    },
  );
  jsonOption(bpf.command("metrics").description("the datapath's drop and forward counters")).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const r = await fromAgentOrPins(
        places(cmd, s),
        (c) => c.metrics(),
        (p) => toWire(p.counters().metrics),
      );
      s.out.write(o.json === true ? json(r.value) : formatMetrics(r.value));
    },
  );

  // --- monitor --------------------------------------------------------------
  jsonOption(
    program
      .command("monitor")
      .description("print drop, trace and policy-verdict events as they happen; reconnects when the agent restarts")
      .addOption(
        new Option("--type <type>", "only this event type: drop, trace, policy-verdict (repeatable)").argParser(
          (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
        ),
      )
      .option("--from <id>", "only events of packets leaving this endpoint")
      .option("--to <id>", "only events of packets arriving at this endpoint"),
  ).action(async (o: { json?: boolean; type?: string[]; from?: string; to?: string }, cmd: Command) => {
    const types = parseMonitorTypes(o.type ?? []);
    const from = o.from === undefined ? undefined : parseEndpointId(o.from, "--from");
    const to = o.to === undefined ? undefined : parseEndpointId(o.to, "--to");
    const c = client(cmd, s);
    const keep = (line: MonitorLine): boolean => {
      if (line.kind === "lost") return true;
      const e = line.event;
      if (from !== undefined && to !== undefined)
        return (
          (e.endpointId === from && e.direction === "egress") || (e.endpointId === to && e.direction === "ingress")
        );
      if (from !== undefined) return e.endpointId === from && e.direction === "egress";
      if (to !== undefined) return e.endpointId === to && e.direction === "ingress";
      return true;
    };
    const endpoint =
      from !== undefined && to === undefined ? from : to !== undefined && from === undefined ? to : undefined;
    // The first contact must succeed (else there is no agent to follow, exit 3); after that the
    // monitor outlives agent restarts: it reconnects every 500 ms until interrupted.
    await c.healthz();
    let connected = true;
    while (!s.signal.aborted) {
      try {
        if (!connected) {
          await c.healthz();
          connected = true;
          s.err.write("dp: reconnected to the agent\n");
        }
        for await (const line of c.monitor({
          ...(types.length === 0 ? {} : { types }),
          ...(endpoint === undefined ? {} : { endpoint }),
          signal: s.signal,
        })) {
          if (keep(line)) s.out.write(o.json === true ? `${JSON.stringify(line)}\n` : `${formatMonitorLine(line)}\n`);
        }
      } catch (err) {
        if (!(err instanceof AgentUnreachableError) && !isConnectionError(err)) throw err;
      }
      if (s.signal.aborted) break;
      if (connected) s.err.write("dp: lost the agent; reconnecting\n");
      connected = false;
      await sleep(500, s.signal);
    }
    s.exitCode = EXIT.interrupted;
  });

  // --- agent ----------------------------------------------------------------
  const agentCmd = program
    .command("agent")
    .description(
      "run the agent in the foreground: the node's datapath, the API socket, metrics; SIGTERM or Ctrl-C stops it (tearing the datapath down only with agent-teardown-on-stop)",
    );
  const keyOfAttribute = new Map<string, string>();
  for (const k of CONFIG_KEYS) {
    // The global --bpf-root and --socket already name two of them.
    if (k.key === "bpf-root") continue;
    const value =
      k.kind === "boolean"
        ? "[bool]"
        : `<${k.kind === "list" ? "a,b" : k.kind === "choice" ? (k.choices ?? []).join("|") : k.kind}>`;
    const note = k.status === "not-supported-yet" ? " (not supported yet)" : "";
    const opt = new Option(
      `--${k.key} ${value}`,
      `${k.description.replace(/\.$/, "")}${note}; default ${k.default === "" ? '""' : k.default}`,
    );
    keyOfAttribute.set(opt.attributeName(), k.key);
    agentCmd.addOption(opt.hideHelp(k.status === "not-supported-yet"));
  }
  agentCmd
    .addHelpText(
      "after",
      "\nEvery config key is also a flag (--<key> <value>); flags override the --config file. Keys not supported yet are accepted but hidden here; docs/config.md lists them all.",
    )
    .action(async (o: Record<string, string | boolean>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const flags: Record<string, string | boolean> = {};
      for (const [attr, v] of Object.entries(o)) {
        const key = keyOfAttribute.get(attr);
        if (key !== undefined) flags[key] = v;
      }
      if (g.bpfRoot !== undefined) flags["bpf-root"] = g.bpfRoot;
      if (g.socket !== undefined) flags["socket-path"] = g.socket;
      const { config, warnings } = loadConfig({ ...(g.config === undefined ? {} : { file: g.config }), flags });
      // The agent logs the warnings (and lists unknown keys in `dp status`).
      const logger = createLogger({ format: config["log-format"], debug: config.debug, stream: s.err });
      if (s.signal.aborted) {
        s.exitCode = EXIT.interrupted;
        return;
      }
      const agent = await startAgent(config, { logger, warnings });
      await new Promise<void>((resolve) => {
        if (s.signal.aborted) resolve();
        else s.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      const teardown = config["agent-teardown-on-stop"];
      logger.info(teardown ? "stopping; tearing the datapath down" : "stopping; the datapath keeps running", {
        signal: String(s.signal.reason),
      });
      await agent.close({ teardown });
      s.exitCode = s.signal.reason === "SIGTERM" ? EXIT.ok : EXIT.interrupted;
    });

  // --- connectivity ---------------------------------------------------------
  const connectivity = program.command("connectivity").description("check the datapath end to end");
  jsonOption(
    connectivity
      .command("test")
      .description(
        "run the connectivity scenarios (pods, rules, traffic, expected vs observed) against the running agent",
      )
      .option("--test <regex>", "only the scenarios whose name matches")
      .option("--external-target <ip>", "an address outside the node for the pod-to-world actions"),
  ).action(async (o: { json?: boolean; test?: string; externalTarget?: string }, cmd: Command) => {
    const tests = o.test === undefined ? undefined : regex(o.test);
    const report = await runConnectivityTest({
      client: client(cmd, s),
      ...(tests === undefined ? {} : { tests }),
      ...(o.externalTarget === undefined ? {} : { externalTarget: o.externalTarget }),
      onProgress: (m) => s.err.write(`${m}\n`),
      signal: s.signal,
    });
    s.out.write(o.json === true ? json(report) : `${formatConnectivityReport(report)}\n`);
    s.exitCode = report.failed > 0 ? EXIT.failed : EXIT.ok;
  });

  // --- demo -----------------------------------------------------------------
  program
    .command("demo")
    .description(
      "build a lab in network namespaces, start the agent, run the connectivity test and measure; tears down unless --keep",
    )
    .addOption(new Option("--host-routing <mode>", "bpf or legacy").choices(["bpf", "legacy"]))
    .option("--keep", "keep the lab and its agent running (dp status works against it)")
    .option("--teardown", "remove a lab kept by an earlier --keep")
    .option("--test <regex>", "only the scenarios whose name matches")
    .action(async (o: { hostRouting?: "bpf" | "legacy"; keep?: boolean; teardown?: boolean; test?: string }) => {
      const out = s.out as NodeJS.WritableStream;
      if (o.teardown === true) {
        if (o.keep === true || o.hostRouting !== undefined)
          throw usageError("Cannot combine --teardown with --keep or --host-routing");
        s.exitCode = await teardownDemo({ out });
        return;
      }
      const tests = o.test === undefined ? undefined : regex(o.test);
      s.exitCode = await runDemo({
        ...(o.hostRouting === undefined ? {} : { hostRouting: o.hostRouting }),
        keep: o.keep === true,
        out,
        signal: s.signal,
        handleSignals: false,
        ...(tests === undefined ? {} : { tests }),
      });
    });

  // --- config ---------------------------------------------------------------
  const configCmd = program.command("config").description("the agent's config: check a file, print the reference");
  jsonOption(
    configCmd
      .command("check")
      .description("validate the --config file as `dp agent` would and print the effective config (every key)"),
  ).action((o: { json?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    if (g.config === undefined) throw usageError("Cannot check the config: pass --config FILE");
    const { config, warnings } = loadConfig({ file: g.config });
    // Contradictions between keys (not the kernel's features: any kernel will do here).
    resolveConfig(config, { redirectPeer: true, redirectNeigh: true, tcx: true });
    for (const w of warnings) s.err.write(`dp: warning: ${w.key}: ${w.message}\n`);
    s.out.write(
      o.json === true
        ? json(config)
        : keyValues(
            Object.entries(config).map(([k, v]): [string, string] => [
              k,
              v === undefined ? "(unset)" : Array.isArray(v) ? v.join(",") : String(v),
            ]),
          ),
    );
  });
  configCmd
    .command("docs")
    .description("print the reference of every config key (Markdown, as docs/config.md)")
    .action(() => {
      s.out.write(renderConfigDocs());
    });

  // --- completion -----------------------------------------------------------
  program
    .command("completion")
    .description('print a shell completion script: eval "$(dp completion bash)"')
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell === "bash") s.out.write(bashCompletion(program));
      else if (shell === "zsh") s.out.write(zshCompletion(program));
      else throw usageError(`Invalid shell ${JSON.stringify(shell)}: expected bash or zsh`);
    });

  return program;
}

/**
 * Builds the `dp` command tree writing to the given streams. The commands'
 * actions set `exitCode` on the returned session.
 *
 * @param io Streams, environment, stop signal.
 * @returns The program and the session its actions report to.
 */
export function createProgram(io: CliIo = {}): { program: Command; session: { readonly exitCode: number } } {
  const session: Session = {
    out: io.stdout ?? process.stdout,
    err: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    signal: io.signal ?? new AbortController().signal,
    exitCode: EXIT.ok,
  };
  return { program: build(session), session };
}
