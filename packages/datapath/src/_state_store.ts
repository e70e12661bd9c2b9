// A small record store on bpffs for what a Node must find again after a
// restart and that no datapath map holds (an endpoint's labels, its pod's
// namespace path, interface names; the policy rules): JSON documents
// in a pinned hash map, split into chunks of one value each. bpffs holds
// only pins, and the library does not touch the file system itself, so a
// map is the bpffs-only way to keep them.
import { type BpfMap, createMap, MAP_FLAGS, openPinnedMap, SyscallError } from "@dp/core";

const KEY_SIZE = 64;
const VALUE_SIZE = 4096;
const HEADER = 4;
const CHUNK = VALUE_SIZE - HEADER;
const MAX_ENTRIES = 65536;
const ENOENT = 2;

function key(name: string, chunk: number): Uint8Array {
  const out = new Uint8Array(KEY_SIZE);
  const bytes = new TextEncoder().encode(`${name}#${chunk}`);
  if (bytes.length > KEY_SIZE) throw new RangeError(`Cannot store record "${name}": the name is too long`);
  out.set(bytes);
  return out;
}

function keyName(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  const text = new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
  return text.slice(0, text.lastIndexOf("#"));
}

/** JSON records in a pinned map, by name. */
export class StateStore {
  readonly #map: BpfMap;

  /**
   * Wraps the map.
   *
   * @param map The record map.
   */
  constructor(map: BpfMap) {
    this.#map = map;
  }

  /**
   * Reads a record.
   *
   * @param name Its name.
   * @returns The parsed JSON, or undefined when there is none.
   */
  get(name: string): unknown {
    const parts: Uint8Array[] = [];
    for (let i = 0; ; i++) {
      const v = this.#map.get(key(name, i));
      if (v === undefined) break;
      const len = new DataView(v.buffer, v.byteOffset).getUint32(0, true);
      parts.push(v.subarray(HEADER, HEADER + len));
      if (len < CHUNK) break;
    }
    if (parts.length === 0) return undefined;
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return JSON.parse(new TextDecoder().decode(all)) as unknown;
  }

  /**
   * Writes a record, replacing the previous one.
   *
   * @param name Its name.
   * @param value Anything JSON can hold.
   */
  set(name: string, value: unknown): void {
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    const chunks = Math.floor(bytes.length / CHUNK) + 1;
    for (let i = 0; i < chunks; i++) {
      const part = bytes.subarray(i * CHUNK, (i + 1) * CHUNK);
      const v = new Uint8Array(VALUE_SIZE);
      new DataView(v.buffer).setUint32(0, part.length, true);
      v.set(part, HEADER);
      this.#map.set(key(name, i), v);
    }
    for (let i = chunks; this.#map.delete(key(name, i)); i++);
  }

  /**
   * Deletes a record.
   *
   * @param name Its name.
   * @returns Whether there was one.
   */
  delete(name: string): boolean {
    let any = false;
    for (let i = 0; this.#map.delete(key(name, i)); i++) any = true;
    return any;
  }

  /**
   * The names of the records whose name starts with `prefix`.
   *
   * @param prefix The prefix.
   * @returns The names, sorted.
   */
  names(prefix: string): string[] {
    const out = new Set<string>();
    for (const k of this.#map.keys()) {
      const name = keyName(k);
      if (name.startsWith(prefix)) out.add(name);
    }
    return [...out].sort();
  }

  /** Closes the map handle; the pinned map stays. */
  close(): void {
    this.#map.close();
  }
}

/**
 * Opens the record store pinned at `path`, creating and pinning it when missing.
 *
 * @param path A path on bpffs.
 * @returns The store and whether it existed.
 */
export function openStateStore(path: string): { store: StateStore; existed: boolean } {
  try {
    return { store: new StateStore(openPinnedMap(path)), existed: true };
  } catch (err) {
    if (!(err instanceof SyscallError && err.errno === ENOENT)) throw err;
  }
  const map = createMap({
    name: "dp_node_state",
    type: "hash",
    keySize: KEY_SIZE,
    valueSize: VALUE_SIZE,
    maxEntries: MAX_ENTRIES,
    flags: MAP_FLAGS.noPrealloc,
  });
  try {
    map.pin(path);
  } catch (err) {
    map.close();
    throw err;
  }
  return { store: new StateStore(map), existed: false };
}
