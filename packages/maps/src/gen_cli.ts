#!/usr/bin/env node
// dp-gen: writes the TypeScript bindings of a BPF object (see
// generateBindings), or checks that a written file is up to date.
//
//   dp-gen OBJECT.o [-o OUT.ts] [--check] [--ipv4-fields LIST] [--command TEXT]
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateBindings } from "./gen.ts";

const USAGE = `Usage: dp-gen OBJECT.o [-o OUT.ts] [--check] [--ipv4-fields LIST] [--command TEXT]

Writes TypeScript bindings for a BPF object from its BTF: a codec per struct
the maps and global variables use, and bind(coll) returning typed maps.

  -o, --output OUT.ts  the file to write (default: standard output)
  --check              write nothing; exit 1 when OUT.ts is not what would be written
  --ipv4-fields LIST   __be32 fields to generate as IPv4 addresses (ipv4: "10.0.0.1")
                       instead of be32 numbers, comma-separated: a member name (saddr),
                       struct.member (flow_key.saddr), or map.key / map.value
  --command TEXT       how the header names this command (default: dp-gen)
  -h, --help           show this help
`;

/** Where {@link runGenCli} writes and which directory paths are relative to. */
export interface GenCliIo {
  /** Writes to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes to standard error. */
  readonly stderr: (text: string) => void;
  /** The working directory: paths in arguments are relative to it, and the header names them relative to it. */
  readonly cwd: string;
}

/**
 * Runs `dp-gen` with command-line arguments.
 *
 * @param args The arguments after the command name.
 * @param io Output streams and working directory.
 * @returns The exit status: 0 on success (or an up-to-date file with
 *   `--check`), 1 when the object cannot be read or the file is stale,
 *   2 on a usage error.
 */
export function runGenCli(args: readonly string[], io: GenCliIo = processIo()): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        output: { type: "string", short: "o" },
        check: { type: "boolean", default: false },
        "ipv4-fields": { type: "string", multiple: true, default: [] },
        command: { type: "string", default: "dp-gen" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    io.stderr(`dp-gen: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === undefined) {
    io.stderr(`dp-gen: expected one object file, got ${positionals.length}\n\n${USAGE}`);
    return 2;
  }
  if (values.check && values.output === undefined) {
    io.stderr(`dp-gen: --check needs -o OUT.ts\n\n${USAGE}`);
    return 2;
  }
  const object = display(positionals[0], io.cwd);
  const output = values.output === undefined ? undefined : display(values.output, io.cwd);
  const ipv4Fields = values["ipv4-fields"].flatMap((list) => list.split(",")).filter((f) => f !== "");
  const command = [
    values.command,
    shellQuote(object),
    ...(output === undefined ? [] : ["-o", shellQuote(output)]),
    ...(ipv4Fields.length === 0 ? [] : ["--ipv4-fields", shellQuote(ipv4Fields.join(","))]),
  ].join(" ");

  let bytes: Uint8Array;
  try {
    bytes = readFileSync(resolve(io.cwd, object));
  } catch (err) {
    io.stderr(`dp-gen: Cannot read ${JSON.stringify(object)}: ${describe(err)}\n`);
    return 1;
  }
  let text: string;
  try {
    text = generateBindings(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      objectPath: object,
      command,
      ipv4Fields,
    });
  } catch (err) {
    io.stderr(`dp-gen: ${describe(err)}\n`);
    return 1;
  }

  if (output === undefined) {
    io.stdout(text);
    return 0;
  }
  const outPath = resolve(io.cwd, output);
  if (values.check) {
    const current = existsSync(outPath) ? readFileSync(outPath, "utf8") : undefined;
    if (current === text) return 0;
    const why =
      current === undefined
        ? "it does not exist"
        : `it differs from the generated text at line ${firstDifference(current, text)}`;
    io.stderr(`dp-gen: ${output} is stale (generated from ${object}): ${why}. Regenerate it with: ${command}\n`);
    return 1;
  }
  try {
    writeFileSync(outPath, text);
  } catch (err) {
    io.stderr(`dp-gen: Cannot write ${JSON.stringify(output)}: ${describe(err)}\n`);
    return 1;
  }
  return 0;
}

function processIo(): GenCliIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    cwd: process.cwd(),
  };
}

/** A path as the header names it: relative to the working directory when inside it, so output is the same on every checkout. */
function display(path: string, cwd: string): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function firstDifference(a: string, b: string): number {
  const x = a.split("\n");
  const y = b.split("\n");
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  return i + 1;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let message = err.message;
  for (let cause = err.cause; cause instanceof Error; cause = cause.cause) message += `: ${cause.message}`;
  return message;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) process.exitCode = runGenCli(process.argv.slice(2));
