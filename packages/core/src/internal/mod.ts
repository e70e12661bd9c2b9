/**
 * Internals shared by the `@dp/*` packages: raw descriptors, the system call
 * gateway, native memory and a minimal instruction encoder. No semver
 * promise: only other `@dp/*` packages should import this.
 *
 * @module
 */
export { type Sys, setSys, sys } from "../_sys/sys.ts";
export { type ReactorState, type ReadySource, reactorState, watchReadable } from "../_sys/reactor.ts";
export { type FdLeak, openFds, rawFd, takeFdLeaks } from "../bpf/fd.ts";
export { Native } from "../bpf/_bpf.ts";
export { errnoName, errnoNumber } from "../_errno.ts";
export { openSocket } from "./socket.ts";
export { abortableGenerator } from "./abortable.ts";
export * as asm from "./asm.ts";
export * from "../_gen/rtnetlink.ts";
export { forbiddenSys } from "./forbidden.ts";
export * from "../loader/elf.ts";
export * from "../loader/section_names.ts";
export {
  Btf,
  BtfSyntaxError,
  buildBtf,
  encodeBtf,
  parseBtf,
  type BtfArray,
  type BtfConst,
  type BtfDatasec,
  type BtfDatasecVariable,
  type BtfDeclTag,
  type BtfEnum,
  type BtfEnum64,
  type BtfEnum64Value,
  type BtfEnumValue,
  type BtfFloat,
  type BtfFunc,
  type BtfFuncProto,
  type BtfFwd,
  type BtfInt,
  type BtfKind,
  type BtfLinkage,
  type BtfMember,
  type BtfParam,
  type BtfPtr,
  type BtfRestrict,
  type BtfStruct,
  type BtfType,
  type BtfTypedef,
  type BtfTypeTag,
  type BtfUnion,
  type BtfVar,
  type BtfVarSecinfo,
  type BtfVoid,
  type BtfVolatile,
  type BuildBtfOptions,
  type ParseBtfOptions,
} from "../btf/btf.ts";
export * from "../btf/btf_ext.ts";
export * from "../btf/btf_load.ts";
export * from "../loader/object_maps.ts";
export {
  kconfigData,
  kconfigExterns,
  parseKernelConfig,
  readKernelConfig,
  type KconfigDataOptions,
  type KconfigExtern,
  type KconfigLayout,
} from "../loader/kconfig.ts";
export {
  failingInstruction,
  sourceForInstruction,
  withSource,
  type SourceLineInfo,
} from "../loader/verifier_source.ts";
export { decodeVariable, encodeVariable } from "../loader/variables.ts";
export * from "../loader/core_relo.ts";
export { mapDirect, type MapDirect } from "../bpf/map.ts";
export { formatIpv6, parseIpv4Into, parseIpv6Into, parseMacInto } from "../network/net_addr.ts";
export { readFileText, type ReadFileTextOptions } from "./read_file.ts";
export { renamePin } from "../bpf/pin.ts";
export { createIterLink, readIterator, type ReadIteratorOptions } from "../bpf/link.ts";
