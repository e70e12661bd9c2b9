// Checking selectors into requirements, collecting problems with their field paths.
import { parseLabel } from "./label.ts";

/** `SelectorOperator` (repeated here to keep imports one-way). */
type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

/** A problem found while checking a selector: the field and what is wrong. */
export interface Problem {
  field: string;
  message: string;
}

/** One compiled requirement: source undefined = any source. */
export interface Requirement {
  readonly source: string | undefined;
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

function joinField(base: string, sub: string): string {
  if (base === "") return sub;
  return sub.startsWith("[") ? `${base}${sub}` : `${base}.${sub}`;
}

/** Splits `source:key` (or `key`, `any:key`) into a source (undefined = any) and a key, checking both. */
function splitKey(
  text: string,
  field: string,
  problems: Problem[],
): { source: string | undefined; key: string } | undefined {
  if (typeof text !== "string" || text === "") {
    problems.push({ field, message: "the key must be a non-empty string" });
    return undefined;
  }
  const colon = text.indexOf(":");
  try {
    const label = parseLabel(colon < 0 ? `any:${text}` : text);
    return { source: label.source === "any" ? undefined : label.source, key: label.key };
  } catch (err) {
    problems.push({ field, message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

function checkValue(v: unknown, field: string, problems: Problem[]): v is string {
  if (typeof v !== "string") {
    problems.push({ field, message: `the value must be a string, got ${typeof v}` });
    return false;
  }
  try {
    parseLabel(v === "" ? "any:k" : `any:k=${v}`);
    return true;
  } catch {
    problems.push({ field, message: `the value ${JSON.stringify(v)} is not a valid label value` });
    return false;
  }
}

/**
 * Checks a selector, collecting problems instead of throwing.
 *
 * @param input The selector as given.
 * @param base The field path of the selector (`""` at the top).
 * @param problems Where problems go.
 * @returns The requirements, or `undefined` when there were problems.
 */
export function compileRequirements(input: unknown, base: string, problems: Problem[]): Requirement[] | undefined {
  const before = problems.length;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    problems.push({
      field: base === "" ? "(selector)" : base,
      message: "must be an object with matchLabels and/or matchExpressions",
    });
    return undefined;
  }
  const reqs: Requirement[] = [];
  const sel = input as Record<string, unknown>;
  for (const k of Object.keys(sel)) {
    if (k !== "matchLabels" && k !== "matchExpressions") {
      problems.push({ field: joinField(base, k), message: "unknown field (expected matchLabels or matchExpressions)" });
    }
  }
  const ml = sel["matchLabels"];
  if (ml !== undefined) {
    const field = joinField(base, "matchLabels");
    if (typeof ml !== "object" || ml === null || Array.isArray(ml)) {
      problems.push({ field, message: "must be an object from label key to value" });
    } else {
      for (const [k, v] of Object.entries(ml as Record<string, unknown>)) {
        const f = `${field}[${JSON.stringify(k)}]`;
        const key = splitKey(k, f, problems);
        if (key !== undefined && checkValue(v, f, problems)) reqs.push({ ...key, operator: "In", values: [v] });
      }
    }
  }
  const me = sel["matchExpressions"];
  if (me !== undefined) {
    const field = joinField(base, "matchExpressions");
    if (!Array.isArray(me)) {
      problems.push({ field, message: "must be an array of requirements" });
    } else {
      me.forEach((raw: unknown, i: number) => {
        const f = `${field}[${i}]`;
        if (typeof raw !== "object" || raw === null) {
          problems.push({ field: f, message: "must be an object with key, operator and values" });
          return;
        }
        const r = raw as Record<string, unknown>;
        const key = splitKey(r["key"] as string, `${f}.key`, problems);
        const op = r["operator"];
        if (!OPERATORS.includes(op as SelectorOperator)) {
          problems.push({
            field: `${f}.operator`,
            message: `must be one of ${OPERATORS.join(", ")}, got ${JSON.stringify(op)}`,
          });
          return;
        }
        const operator = op as SelectorOperator;
        const values = r["values"];
        const wantsValues = operator === "In" || operator === "NotIn";
        if (values !== undefined && !Array.isArray(values)) {
          problems.push({ field: `${f}.values`, message: "must be an array of strings" });
          return;
        }
        const list = (values ?? []) as unknown[];
        if (wantsValues && list.length === 0) {
          problems.push({ field: `${f}.values`, message: `operator ${operator} needs at least one value` });
          return;
        }
        if (!wantsValues && list.length > 0) {
          problems.push({ field: `${f}.values`, message: `operator ${operator} takes no values` });
          return;
        }
        const ok = list.every((v, j) => checkValue(v, `${f}.values[${j}]`, problems));
        if (key !== undefined && ok) {
          reqs.push({ ...key, operator, values: [...new Set(list)].sort() });
        }
      });
    }
  }
  if (problems.length > before) return undefined;
  return reqs;
}
