import type { BpfMap } from "@dp/core";

/**
 * A conntrack map (`dp_ct_tcp` or `dp_ct_any`): the raw map, or a typed
 * map over it such as the generated bindings' `HashMap` (anything with a
 * `map` property). The functions of this folder read and write the raw
 * map with batch system calls; they never open or close it.
 */
export type ConntrackMapRef =
  | BpfMap
  | {
      /** The map, as typed map classes and generated bindings hold it. */
      readonly map: BpfMap;
    };

/** The two conntrack maps of a node: TCP connections, and everything else. */
export interface ConntrackMaps {
  /** `dp_ct_tcp`. */
  readonly tcp: ConntrackMapRef;
  /** `dp_ct_any`. */
  readonly any: ConntrackMapRef;
}
