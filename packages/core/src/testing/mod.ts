/**
 * Test fixtures for code that talks to the kernel: uniquely named network
 * namespaces that are always removed, veth pairs between them, bpffs
 * directories, and skips that say why (missing root, kernel version or
 * `CONFIG_` option).
 *
 * The fixtures drive `ip` from iproute2 for set-up, as a test oracle would;
 * the library itself never does.
 *
 * @example A namespace for one test
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * assert.match(ns.exec("ip", ["-json", "link", "show", "lo"]), /"ifname":"lo"/);
 * ```
 *
 * @module \@dp/core/testing
 */
export { kernelConfig, requireConfig, requireKernel, requireRoot, skipIfNotSupported } from "./skip.ts";
export type { SkipContext } from "./skip.ts";
export { netns, TestNetns } from "./netns.ts";
export type { NetnsOptions } from "./netns.ts";
export { vethPair } from "./veth.ts";
export type { VethEnd, VethPair, VethOptions } from "./veth.ts";
export { bpffsDir, BpffsDir } from "./bpffs.ts";
