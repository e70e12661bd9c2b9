import { LabelSet } from "../labels/label_set.ts";
import type { Identity } from "./identity.ts";
import { RESERVED_IDENTITIES } from "./reserved.ts";

/** The reserved identities with their labels, by number. */
export const RESERVED: ReadonlyMap<number, Identity> = new Map(
  Object.entries(RESERVED_IDENTITIES).map(([name, id]) => [
    id,
    Object.freeze({ id, labels: LabelSet.from([`reserved:${name}`]) }),
  ]),
);
