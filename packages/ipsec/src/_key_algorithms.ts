// Adapter between the key file (keys.ts) and the algorithm table of the
// state codec (_algorithms.ts): the same names, key sizes and ICV lengths,
// reported with the key file's field names.
import { type AlgorithmKind, algorithmProblem } from "./_algorithms.ts";
import type { XfrmAeadAlgorithm, XfrmAuthAlgorithm, XfrmCryptAlgorithm } from "./types.ts";

/** The algorithms of one key file line. */
export interface KeyAlgorithms {
  /** The AEAD algorithm. */
  readonly aead?: XfrmAeadAlgorithm;
  /** The authentication algorithm. */
  readonly auth?: XfrmAuthAlgorithm;
  /** The encryption algorithm. */
  readonly crypt?: XfrmCryptAlgorithm;
}

/** What is wrong with a key's algorithms, for a key file error. */
export interface KeyAlgorithmProblem {
  /** The key file field: `"algorithm"`, `"key"`, `"icv bits"`, `"auth key"`, ... */
  readonly field: string;
  /** What is wrong (never key bytes). */
  readonly detail: string;
}

/** State fields (`aead.key`) to key file fields (`key`). */
const FIELDS: Readonly<Record<string, string>> = {
  aead: "algorithm",
  "aead.name": "algorithm",
  "aead.key": "key",
  "aead.icvBits": "icv bits",
  auth: "auth algorithm",
  "auth.name": "auth algorithm",
  "auth.key": "auth key",
  "auth.truncBits": "auth algorithm",
  crypt: "crypt algorithm",
  "crypt.name": "crypt algorithm",
  "crypt.key": "crypt key",
};

/**
 * Checks a key's algorithm names, key sizes and ICV length against the
 * algorithms states accept.
 *
 * @param key The key.
 * @returns The first problem, or undefined.
 */
export function checkKeyAlgorithms(key: KeyAlgorithms): KeyAlgorithmProblem | undefined {
  for (const kind of ["aead", "auth", "crypt"] as const satisfies readonly AlgorithmKind[]) {
    const v = key[kind];
    if (v === undefined) continue;
    const p = algorithmProblem(kind, v);
    if (p !== undefined) return { field: FIELDS[p.field] ?? p.field, detail: p.detail };
  }
  return undefined;
}
