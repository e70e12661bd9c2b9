// Cilium's config values arrive as strings (a Kubernetes ConfigMap holds only
// strings, flags are typed text): these turn the string forms into the values
// the schema checks, and leave anything else alone for the schema to reject.

/** Go's strconv.ParseBool: what Cilium accepts as true. */
const GO_TRUE: ReadonlySet<string> = new Set(["1", "t", "T", "TRUE", "true", "True"]);
/** Go's strconv.ParseBool: what Cilium accepts as false. */
const GO_FALSE: ReadonlySet<string> = new Set(["0", "f", "F", "FALSE", "false", "False"]);

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * `"True"`, `"false"`, `"1"`, `"0"` (Go's `strconv.ParseBool` forms), and the
 * numbers 1 and 0, as booleans.
 */
export function coerceBoolean(value: unknown): unknown {
  if (typeof value === "string") {
    if (GO_TRUE.has(value)) return true;
    if (GO_FALSE.has(value)) return false;
  }
  if (value === 1) return true;
  if (value === 0) return false;
  return value;
}

/** Decimal strings (`"524288"`, `"0.0025"`) as numbers. */
export function coerceNumber(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const text = value.trim();
  return INTEGER.test(text) || DECIMAL.test(text) ? Number(text) : value;
}

/** A comma- or space-separated string (`"eth0,eth1"`, `"eth0 eth1"`) as a list. */
export function coerceList(value: unknown): unknown {
  if (typeof value !== "string") return value;
  return value.split(/[\s,]+/).filter((s) => s !== "");
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`"5m"`, `"1m30s"`, `"500ms"`, `"0"`) into
 * milliseconds, or `undefined` when it is not one.
 */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let at = 0;
  let ms = 0;
  if (text.length === 0) return undefined;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return undefined;
    ms += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
    at = re.lastIndex;
  }
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Formats milliseconds the way Go's `time.Duration.String` does (`"1m30s"`, `"500ms"`, `"0s"`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}

/** A value as it appears in a message: strings, lists and objects as JSON, the rest as text. */
export function formatValue(value: unknown): string {
  if (typeof value === "string" || typeof value === "object") {
    try {
      return JSON.stringify(value);
    } catch {
      return "an unprintable value";
    }
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  return value === undefined ? "undefined" : `a ${typeof value}`;
}
