// Loads the etcd3 client after making protobufjs decode int64 exactly.
//
// etcd's revisions, lease IDs and TTLs are int64. The gRPC stack decodes
// them exactly (as strings) only when protobufjs finds long.js; it looks
// it up with require("long"), which a process started with
// `--conditions=import` (as test runners do) resolves to long's ES module,
// which protobufjs does not recognise. Without it a lease ID like
// 7891610923870937094 comes back rounded ("requested lease not found") and
// a revoked lease's TTL decodes as 0 instead of "0" (its loss goes
// unnoticed). The fix must run before etcd3 loads its protocol
// definitions, hence the dynamic import (static imports would be
// evaluated first, also in a bundle).
import Long from "long";
import protobuf from "protobufjs/minimal.js";

/** The etcd3 module. */
export type Etcd3Module = typeof import("etcd3");

let loaded: Promise<Etcd3Module> | undefined;

/** Returns the etcd3 module, loading it once. */
export function loadEtcd3(): Promise<Etcd3Module> {
  if (loaded === undefined) {
    if (!protobuf.util.Long) {
      protobuf.util.Long = Long;
      protobuf.configure();
    }
    loaded = import("etcd3");
  }
  return loaded;
}
