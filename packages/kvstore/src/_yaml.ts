// The YAML subset of an etcd-config file: a top-level mapping of scalars
// and lists of scalars (block `- item` lists or flow `[a, b]`), comments,
// a leading `---`. Anything else is a SyntaxError naming the line.

/** A parsed value: a scalar string, or a list of them. */
export type YamlValue = string | string[];

function unquote(raw: string, line: number): string {
  const s = raw.trim();
  if (s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'")))) {
    if (s.startsWith('"')) {
      try {
        return JSON.parse(s) as string;
      } catch {
        // The value is not repeated: it may be a password.
        throw new SyntaxError(`Invalid etcd config: line ${line}: bad double-quoted string`);
      }
    }
    return s.slice(1, -1).replaceAll("''", "'");
  }
  return s;
}

function stripComment(text: string): string {
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== "") {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || text[i - 1] === " " || text[i - 1] === "\t")) {
      return text.slice(0, i);
    }
  }
  return text;
}

function flowList(raw: string, line: number): string[] {
  const inner = raw.trim().slice(1, -1).trim();
  if (inner === "") return [];
  return inner.split(",").map((p) => unquote(p, line));
}

/** Parses the mapping; keys keep their order, a repeated key is an error. */
export function parseYamlMapping(text: string): Map<string, YamlValue> {
  const out = new Map<string, YamlValue>();
  let listKey: string | undefined;
  const lines = text.split(/\r?\n/);
  // A document indented as a whole (a block mapping may start indented).
  let base: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let line = stripComment(lines[i] as string).replace(/\s+$/, "");
    if (line.trim() === "" || line.trim() === "---") continue;
    base ??= (/^ */.exec(line) as RegExpExecArray)[0].length;
    if (!line.startsWith(" ".repeat(base)))
      throw new SyntaxError(`Invalid etcd config: line ${n}: unexpected indentation`);
    line = line.slice(base);
    const item = /^\s*-\s+(.*)$/.exec(line) ?? /^\s*-$/.exec(line);
    if (item !== null) {
      if (listKey === undefined) throw new SyntaxError(`Invalid etcd config: line ${n}: a list item outside a list`);
      (out.get(listKey) as string[]).push(unquote(item[1] ?? "", n));
      continue;
    }
    if (/^\s/.test(line)) throw new SyntaxError(`Invalid etcd config: line ${n}: unexpected indentation`);
    const m = /^([A-Za-z0-9_.-]+)\s*:(?:\s+(.*))?$/.exec(line);
    if (m === null) throw new SyntaxError(`Invalid etcd config: line ${n}: expected "key: value"`);
    const key = m[1] as string;
    if (out.has(key)) throw new SyntaxError(`Invalid etcd config: line ${n}: duplicate key "${key}"`);
    const raw = (m[2] ?? "").trim();
    if (raw === "") {
      out.set(key, []);
      listKey = key;
    } else if (raw.startsWith("[")) {
      if (!raw.endsWith("]")) throw new SyntaxError(`Invalid etcd config: line ${n}: unterminated list`);
      out.set(key, flowList(raw, n));
      listKey = undefined;
    } else {
      out.set(key, unquote(raw, n));
      listKey = undefined;
    }
  }
  return out;
}
