/**
 * Typed BPF maps over `@dp/core`.
 *
 * @module \@dp/maps
 */
export type { Codec, Infer } from "./codec.ts";
