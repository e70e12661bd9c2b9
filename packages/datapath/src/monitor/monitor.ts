import type { DpEvent } from "../_gen/datapath.ts";
import { decodeMonitorEvent, type MonitorEvent, toMonitorEvent } from "./event.ts";
import { EVENT_TYPES, type MonitorEventType } from "./reasons.ts";

/**
 * Where events come from: the reader of the datapath's `dp_events` ring
 * buffer (`RingBuffer` from `@dp/maps`, with raw or decoded records).
 */
export interface MonitorSource {
  /**
   * Yields records as they arrive until the signal aborts.
   *
   * @param options The signal that ends the iteration.
   * @returns The records: `struct dp_event` bytes, or the objects the generated `DpEvent` codec decodes.
   */
  records(options?: { readonly signal?: AbortSignal }): AsyncIterable<unknown>;
}

/** Options for {@link monitor}. */
export interface MonitorOptions {
  /**
   * Ends the iteration when aborted.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
  /**
   * Only these event types.
   *
   * @default all
   */
  readonly types?: readonly MonitorEventType[];
  /**
   * Only events about this endpoint id.
   *
   * @default all endpoints
   */
  readonly endpoint?: number;
}

function isDpEvent(record: unknown): record is DpEvent {
  const r = record as Partial<DpEvent> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.type === "number" &&
    r.saddr instanceof Uint8Array &&
    r.daddr instanceof Uint8Array
  );
}

function decode(record: unknown): MonitorEvent | undefined {
  if (record instanceof Uint8Array) return decodeMonitorEvent(record);
  if (isDpEvent(record)) return toMonitorEvent(record);
  throw new TypeError(
    `Invalid monitor record: expected struct dp_event bytes or a decoded DpEvent, got ${typeof record}`,
  );
}

async function* events(
  source: MonitorSource,
  options: MonitorOptions,
  types: ReadonlySet<MonitorEventType> | undefined,
): AsyncGenerator<MonitorEvent, void, undefined> {
  const endpoint = options.endpoint;
  const signal = options.signal;
  for await (const record of source.records(signal === undefined ? {} : { signal })) {
    const event = decode(record);
    if (event === undefined) continue;
    if (types !== undefined && !types.has(event.type)) continue;
    if (endpoint !== undefined && event.endpointId !== endpoint) continue;
    yield event;
  }
}

/**
 * The datapath's drop, trace and policy-verdict events as they happen,
 * decoded and filtered, like `cilium monitor`. Events of types this
 * version does not know are skipped. Records are consumed: give each ring
 * buffer one reader. Traces are sent only when the datapath was loaded
 * with tracing on.
 *
 * @param source The reader of the `dp_events` ring buffer.
 * @param options The stop signal and filters.
 * @returns An iterable of events, oldest first, ending when the signal aborts or the reader is closed.
 * @throws {TypeError} When a filter has the wrong type (at once), or a record is neither bytes nor a decoded event (while iterating).
 * @throws {RangeError} When the endpoint id is not an integer from 0 to 65535.
 * @example Waiting for drops with a timeout
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { RingBuffer } from "@dp/maps";
 * import { monitor } from "@dp/datapath";
 *
 * using ring = new RingBuffer(createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 }));
 * const drops = [];
 * for await (const e of monitor(ring, { types: ["drop"], signal: AbortSignal.timeout(50) })) drops.push(e);
 * assert.deepEqual(drops, []);
 * ```
 */
export function monitor(source: MonitorSource, options: MonitorOptions = {}): AsyncIterable<MonitorEvent> {
  if (typeof source?.records !== "function")
    throw new TypeError("Invalid monitor source: expected a ring buffer reader with records()");
  let types: Set<MonitorEventType> | undefined;
  if (options.types !== undefined) {
    const known = Object.values(EVENT_TYPES) as readonly string[];
    if (!Array.isArray(options.types))
      throw new TypeError(`Invalid monitor option "types": expected an array, got ${typeof options.types}`);
    for (const t of options.types as readonly unknown[]) {
      if (typeof t !== "string" || !known.includes(t))
        throw new TypeError(`Invalid monitor option "types": ${JSON.stringify(t)} is not one of ${known.join(", ")}`);
    }
    types = new Set<MonitorEventType>(options.types);
  }
  const endpoint = options.endpoint;
  if (endpoint !== undefined) {
    if (typeof endpoint !== "number")
      throw new TypeError(`Invalid monitor option "endpoint": expected an endpoint id, got ${typeof endpoint}`);
    if (!Number.isInteger(endpoint) || endpoint < 0 || endpoint > 0xffff)
      throw new RangeError(`Invalid monitor option "endpoint": expected an integer from 0 to 65535, got ${endpoint}`);
  }
  return events(source, options, types);
}
