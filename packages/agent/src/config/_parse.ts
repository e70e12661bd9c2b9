// loadConfig's work: read, parse, merge the flags, coerce and validate with
// the zod schema, default, check contradictions.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { AgentConfig } from "./agent_config.ts";
import { ConfigError, type ConfigProblem, type ConfigWarning } from "./config_error.ts";
import { FIELD_KEYS, FIELDS, type FieldKey } from "./_fields.ts";
import { formatValue } from "./_coerce.ts";
import { findContradictions } from "./_rules.ts";

/** What loadConfig takes (see LoadConfigOptions). */
interface ParseOptions {
  readonly file?: string;
  readonly text?: string;
  readonly format?: "yaml" | "json";
  readonly flags?: Readonly<Record<string, string | boolean>>;
}

const KNOWN: ReadonlySet<string> = new Set(FIELD_KEYS);

/** Every key's schema, optional: unset keys are removed before and defaulted after. */
const SCHEMA = z.object(Object.fromEntries(FIELD_KEYS.map((key) => [key, FIELDS[key].schema.optional()])));

function documentProblem(value: unknown, expected: string, message: string): ConfigProblem {
  return { key: "", value, expected, message };
}

function readText(options: ParseOptions): { text: string | undefined; file: string | undefined } {
  if (options.file === undefined) return { text: options.text, file: undefined };
  if (options.text !== undefined) {
    throw new TypeError("Cannot load config: give either file or text, not both");
  }
  try {
    return { text: readFileSync(options.file, "utf8"), file: options.file };
  } catch (e) {
    // Node's message is "ENOENT: no such file or directory, open '/etc/dp/config.yaml'": keep the code and the words.
    const why = e instanceof Error ? e.message.replace(/, \w+ '.*'$/, "") : String(e);
    throw new ConfigError(
      [documentProblem(options.file, "a readable YAML or JSON file", `cannot read the file: ${why}`)],
      { file: options.file, cause: e },
    );
  }
}

/** Parses the document into key → value; a ConfigMap manifest gives its `data`. */
function parseDocument(text: string, format: "yaml" | "json", file: string | undefined): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = format === "json" ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const what = format === "json" ? "JSON" : "YAML";
    const why = e instanceof Error ? (e.message.split("\n")[0] ?? "").replace(/:$/, "") : String(e);
    throw new ConfigError([documentProblem(text, `valid ${what}`, `cannot parse ${what}: ${why}`)], {
      ...(file === undefined ? {} : { file }),
      cause: e,
    });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      [
        documentProblem(
          doc,
          "a mapping of keys to values",
          `the document is ${Array.isArray(doc) ? "a list" : formatValue(doc)} (expected a mapping of keys to values)`,
        ),
      ],
      file === undefined ? {} : { file },
    );
  }
  const record = doc as Record<string, unknown>;
  if (record["kind"] === "ConfigMap" && typeof record["data"] === "object" && record["data"] !== null) {
    return record["data"] as Record<string, unknown>;
  }
  return record;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(
        Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)),
      );
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function unknownKeyWarning(key: string): ConfigWarning {
  let best: string | undefined;
  let bestDistance = 3;
  for (const known of FIELD_KEYS) {
    const d = distance(key, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  const hint = best === undefined ? "" : ` (did you mean "${best}"?)`;
  return { key, message: `unknown key ${JSON.stringify(key)}${hint}` };
}

/** Whether a raw value means "not set": absent, null, or "" for a key whose values are not strings. */
function isUnset(key: FieldKey, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  const kind = FIELDS[key].kind;
  return value === "" && kind !== "string" && !(kind === "choice" && FIELDS[key].choices?.includes("") === true);
}

function problemOf(key: string, raw: unknown, phrase: string): ConfigProblem {
  const expected = KNOWN.has(key) ? FIELDS[key as FieldKey].expected : "";
  return {
    key,
    value: raw,
    expected,
    message: `${key}: ${formatValue(raw)} ${phrase} (expected ${expected})`,
  };
}

/** Reads, merges, coerces and validates (see loadConfig). */
export function parseConfigInput(options: ParseOptions): { config: AgentConfig; warnings: ConfigWarning[] } {
  const { text, file } = readText(options);
  const format = options.format ?? (file?.toLowerCase().endsWith(".json") === true ? "json" : "yaml");
  if (format !== "yaml" && format !== "json") {
    throw new TypeError(`Cannot load config: format must be "yaml" or "json", got ${JSON.stringify(format)}`);
  }
  const raw: Record<string, unknown> = text === undefined ? {} : { ...parseDocument(text, format, file) };
  for (const [name, value] of Object.entries(options.flags ?? {})) {
    raw[name.replace(/^--/, "")] = value;
  }

  const warnings: ConfigWarning[] = [];
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!KNOWN.has(key)) warnings.push(unknownKeyWarning(key));
    else if (!isUnset(key as FieldKey, value)) input[key] = value;
  }

  const problems: ConfigProblem[] = [];
  const parsed = SCHEMA.safeParse(input);
  if (!parsed.success) {
    const seen = new Set<string>();
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? "");
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(problemOf(key, input[key], issue.message));
    }
    problems.sort((a, b) => FIELD_KEYS.indexOf(a.key as FieldKey) - FIELD_KEYS.indexOf(b.key as FieldKey));
    throw new ConfigError(problems, file === undefined ? {} : { file });
  }

  const values: Record<string, unknown> = {};
  for (const key of FIELD_KEYS) values[key] = parsed.data[key] ?? FIELDS[key].default;
  if (values["socket-path"] === "") {
    const derived = `${String(values["state-dir"]).replace(/\/+$/, "")}/dp.sock`;
    const check = FIELDS["socket-path"].schema.safeParse(derived);
    if (!check.success) {
      throw new ConfigError(
        [problemOf("socket-path", derived, `(from state-dir) ${check.error.issues[0]?.message ?? "is not valid"}`)],
        file === undefined ? {} : { file },
      );
    }
    values["socket-path"] = derived;
  }
  // Every value went through its key's schema, typed FieldSpec<AgentConfig[K]>.
  const config = values as unknown as AgentConfig;
  const contradictions = findContradictions(config);
  if (contradictions.length > 0) throw new ConfigError(contradictions, file === undefined ? {} : { file });
  return { config, warnings };
}
