/**
 * A log level.
 *
 * @example Filtering by level
 * ```ts
 * import type { LogLevel } from "@dp/agent";
 * const level: LogLevel = "warn";
 * void level;
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Fields of a log line: plain values (bigints are written as decimal
 * numbers, errors as their message).
 *
 * @example Fields of an endpoint event
 * ```ts
 * import type { LogFields } from "@dp/agent";
 * const fields: LogFields = { endpoint: 7, ipv4: "10.200.0.5" };
 * void fields;
 * ```
 */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * A structured logger: a message plus fields per line, as text
 * (`time=... level=info msg="..." key=value`) or JSON lines
 * (`{"time","level","msg",...fields}`).
 *
 * @example Logging an endpoint
 * ```ts no-run
 * import type { Logger } from "@dp/agent";
 * declare const log: Logger;
 * log.info("Endpoint created", { endpoint: 7, ipv4: "10.200.0.5" });
 * ```
 */
export interface Logger {
  /** Details, written only when `debug` is on. */
  debug(msg: string, fields?: LogFields): void;
  /** Normal events. */
  info(msg: string, fields?: LogFields): void;
  /** Something is wrong but the agent carries on. */
  warn(msg: string, fields?: LogFields): void;
  /** Something failed. */
  error(msg: string, fields?: LogFields): void;
}

/**
 * Options of {@link createLogger}.
 *
 * @example JSON lines with debug output
 * ```ts no-run
 * import type { LoggerOptions } from "@dp/agent";
 * const options: LoggerOptions = { format: "json", debug: true, stream: process.stderr };
 * ```
 */
export interface LoggerOptions {
  /**
   * `text` (logfmt-like) or `json` (one object per line).
   *
   * @default "text"
   */
  readonly format?: "text" | "json";
  /**
   * Whether `debug` lines are written.
   *
   * @default false
   */
  readonly debug?: boolean;
  /**
   * Where lines go.
   *
   * @default process.stderr
   */
  readonly stream?: {
    /** Writes one log line (with its newline). */
    write(text: string): unknown;
  };
  /**
   * The clock (for tests).
   *
   * @default () => new Date()
   */
  readonly now?: () => Date;
}

function plain(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

function textValue(value: unknown): string {
  const v = plain(value);
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return "undefined";
  if (typeof v === "object" && v !== null) return JSON.stringify(v, (_k, x: unknown) => plain(x));
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return typeof v;
}

/**
 * Creates a structured logger.
 *
 * @param options The format, whether debug lines are written, the stream.
 * @returns The logger.
 * @throws {TypeError} When the format is neither `text` nor `json`.
 * @example Text and JSON lines
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "@dp/agent";
 *
 * const lines: string[] = [];
 * const stream = { write: (t: string) => lines.push(t) };
 * const now = () => new Date(0);
 * createLogger({ stream, now }).info("Endpoint created", { endpoint: 7 });
 * createLogger({ format: "json", stream, now }).warn("Slow", { ms: 12 });
 * createLogger({ stream, now }).debug("hidden");
 * assert.deepEqual(lines, [
 *   'time=1970-01-01T00:00:00.000Z level=info msg="Endpoint created" endpoint=7\n',
 *   '{"time":"1970-01-01T00:00:00.000Z","level":"warn","msg":"Slow","ms":12}\n',
 * ]);
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "text";
  if (format !== "text" && format !== "json")
    throw new TypeError(`Cannot create logger: format must be "text" or "json", got ${JSON.stringify(format)}`);
  const stream = options.stream ?? process.stderr;
  const debug = options.debug === true;
  const now = options.now ?? ((): Date => new Date());
  function write(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (level === "debug" && !debug) return;
    const time = now().toISOString();
    let line: string;
    if (format === "json") {
      line = JSON.stringify({ time, level, msg, ...fields }, (_k, v: unknown) => plain(v));
    } else {
      const parts = [`time=${time}`, `level=${level}`, `msg=${JSON.stringify(msg)}`];
      for (const [k, v] of Object.entries(fields)) parts.push(`${k}=${textValue(v)}`);
      line = parts.join(" ");
    }
    stream.write(`${line}\n`);
  }
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
  };
}
