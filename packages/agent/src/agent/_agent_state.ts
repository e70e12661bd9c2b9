// What the agent keeps beside the node's own records: the CNI container
// id of each endpoint and the policy revision, in a small JSON file under
// `state-dir` (written atomically: a temporary file renamed over it).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** The file's content. */
export interface AgentStateData {
  /** The policy revision. */
  revision: number;
  /** Container ids by endpoint id. */
  containerIds: Record<string, string>;
}

/** The agent's state file. */
export class AgentStateFile {
  /** The file's path. */
  readonly path: string;
  /** The data (change it, then {@link AgentStateFile.save}). */
  readonly data: AgentStateData;

  /**
   * Reads the file; a missing or unreadable file starts empty.
   *
   * @param path The file.
   */
  constructor(path: string) {
    this.path = path;
    let data: AgentStateData = { revision: 0, containerIds: {} };
    try {
      const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<AgentStateData>;
      data = {
        revision: typeof parsed.revision === "number" ? parsed.revision : 0,
        containerIds:
          typeof parsed.containerIds === "object" && parsed.containerIds !== null ? parsed.containerIds : {},
      };
    } catch {
      // First start, or a file a crash cut short: start afresh.
    }
    this.data = data;
  }

  /** Writes the file (mode 0600). */
  save(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.data)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  /** Removes the file. */
  remove(): void {
    rmSync(this.path, { force: true });
  }
}
