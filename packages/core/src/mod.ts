/**
 * The dp syscall gateway: everything that talks to the kernel.
 *
 * - bpf(2) objects as bytes: {@link createMap}, {@link loadProgram},
 *   pinning on bpffs, `BPF_PROG_TEST_RUN`;
 * - {@link Fd} lifetime with `close()`, `using` and a leak safety net;
 * - bpf_links and attachments: {@link createLink}, {@link attachProgram},
 *   {@link queryPrograms}, objects by id ({@link programById});
 * - the ELF/BTF object loader: {@link readCollectionSpec},
 *   {@link loadCollection} (CO-RE, global data, `.kconfig`, kfuncs and
 *   `__ksym` externs, pinned maps);
 * - typed errors: {@link SyscallError}, {@link VerifierError},
 *   {@link NotSupportedError}, {@link ClosedError};
 * - feature probes ({@link hasMapType}, {@link hasHelper}, {@link hasTcx});
 * - network namespaces ({@link createNetns}, {@link withNetns}).
 *
 * @example Create a map, write and read it back
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 *
 * using map = createMap({ name: "demo", type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 * map.set(new Uint8Array([1, 0, 0, 0]), new Uint8Array([2, 0, 0, 0]));
 * assert.deepEqual(map.get(new Uint8Array([1, 0, 0, 0])), new Uint8Array([2, 0, 0, 0]));
 * ```
 *
 * @module \@dp/core
 */
export { ClosedError, NotSupportedError, SyscallError, VerifierError, isNotSupported } from "./errors.ts";
export type {
  FormatLogOptions,
  NotSupportedErrorOptions,
  SyscallErrorOptions,
  VerifierErrorOptions,
  VerifierSource,
} from "./errors.ts";
export { Fd } from "./bpf/fd.ts";
export { MAP_FLAGS, validateMapSpec } from "./bpf/map_spec.ts";
export type { MapBtf, MapSpec, MapType } from "./bpf/map_spec.ts";
export { BpfMap, createMap, openPinnedMap } from "./bpf/map.ts";
export type {
  BatchCursor,
  FdOwner,
  MapBatchOptions,
  MapBatchResult,
  MapBatchUpdateOptions,
  MapInfo,
  MapUpdateOptions,
  MapValue,
  UpdateMode,
} from "./bpf/map.ts";
export { BpfProgram, loadProgram, openPinnedProgram } from "./bpf/program.ts";
export type {
  AttachType,
  LoadProgramOptions,
  ProgramBtf,
  ProgramInfo,
  ProgramSpec,
  ProgramType,
  TestRunOptions,
  TestRunResult,
} from "./bpf/program.ts";
export { DEFAULT_BPFFS, isBpffs, mountBpffs, unpin } from "./bpf/pin.ts";
export {
  compareKernelVersions,
  hasHelper,
  hasLinkType,
  hasMapType,
  hasProgramType,
  hasTcx,
  kernelVersion,
  parseKernelVersion,
} from "./features/features.ts";
export type { HelperName, KernelVersion, LinkType } from "./features/features.ts";
export { currentNetns, createNetns, deleteNetns, Netns, NETNS_RUN_DIR, openNetns, withNetns } from "./network/netns.ts";
export { parseCpuList, possibleCpus } from "./features/cpus.ts";
export { interfaceIndex, interfaceName } from "./network/iface.ts";
export {
  attrBe16,
  attrBe32,
  attrS32,
  attrString,
  attrU16,
  attrU32,
  attrU64,
  attrU8,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  NLA_HDRLEN,
  nlAlign,
  NLM_F,
  NLMSG,
  NLMSG_HDRLEN,
  netlinkAttributeMap,
  NetlinkWriter,
  parseNetlinkAttributes,
  parseNetlinkMessages,
} from "./netlink/codec.ts";
export type { NetlinkAttribute, NetlinkMessage } from "./netlink/codec.ts";
export { NetlinkError, NetlinkSocket, openNetlink } from "./netlink/socket.ts";
export type {
  NetlinkErrorOptions,
  NetlinkMessagesReceived,
  NetlinkOverrun,
  NetlinkProtocol,
  NetlinkReceived,
  NetlinkReceiveOptions,
  OpenNetlinkOptions,
} from "./netlink/socket.ts";
export { formatIp, formatMac, parseCidr, parseIp, parseMac } from "./network/net_addr.ts";
export type { IpAddress, IpFamily, IpPrefix } from "./network/net_addr.ts";
export { decodeAttributes, encodeAttributes } from "./netlink/schema.ts";
export type {
  AttributeField,
  AttributeKind,
  AttributeSchema,
  AttributeValue,
  AttributeValues,
  DecodedAttributes,
} from "./netlink/schema.ts";
export { ObjectError, parseCollectionSpec, readCollectionSpec } from "./loader/collection_spec.ts";
export type {
  CollectionMapSpec,
  CollectionProgramSpec,
  CollectionSpec,
  InstructionReference,
  ParseCollectionOptions,
  ProgramCoreRelo,
  ProgramFuncInfo,
  ProgramLineInfo,
} from "./loader/collection_spec.ts";
export { Collection, loadCollection, MapCompatibilityError, Variable } from "./loader/collection.ts";
export type { LoadCollectionOptions } from "./loader/collection.ts";
export { ConstantSet } from "./loader/variables.ts";
export type { VariableSpec, VariableValue } from "./loader/variables.ts";
export { CORE_POISON, CoreRelocationError } from "./loader/core_relo.ts";
export type { CoreRelocationResult } from "./loader/core_relo.ts";
export { KconfigError } from "./loader/kconfig.ts";
export type { KconfigExtern } from "./loader/kconfig.ts";
export { KsymError } from "./loader/ksym.ts";
export type { KsymExtern } from "./loader/ksym.ts";
export { Btf, BtfSyntaxError, parseBtf } from "./btf/btf.ts";
export type {
  BtfArray,
  BtfConst,
  BtfDatasec,
  BtfDatasecVariable,
  BtfDeclTag,
  BtfEnum,
  BtfEnum64,
  BtfEnum64Value,
  BtfEnumValue,
  BtfFloat,
  BtfFunc,
  BtfFuncProto,
  BtfFwd,
  BtfInt,
  BtfKind,
  BtfLinkage,
  BtfMember,
  BtfParam,
  BtfPtr,
  BtfRestrict,
  BtfStruct,
  BtfType,
  BtfTypedef,
  BtfTypeTag,
  BtfUnion,
  BtfVar,
  BtfVarSecinfo,
  BtfVoid,
  BtfVolatile,
  ParseBtfOptions,
} from "./btf/btf.ts";
export type { BtfCoreRelo, BtfCoreReloKind, BtfExt, BtfFuncInfo, BtfLineInfo } from "./btf/btf_ext.ts";
export { kernelBtf } from "./btf/btf_load.ts";
export { ElfError } from "./loader/elf.ts";
export { MapDefinitionError } from "./loader/object_maps.ts";
export type { MapInitialValue, MapPinning } from "./loader/object_maps.ts";
export {
  ATTACH_FLAGS,
  attachProgram,
  BpfLink,
  createLink,
  detachProgram,
  linkById,
  mapById,
  openPinnedLink,
  programById,
  queryPrograms,
  XDP_FLAGS,
} from "./bpf/link.ts";
export type {
  AttachedProgram,
  AttachProgramOptions,
  AttachTarget,
  CreateLinkOptions,
  DetachProgramOptions,
  LinkAnchor,
  LinkAnchorRef,
  LinkInfo,
  LinkUpdateOptions,
  ProgramQuery,
  QueryProgramsOptions,
} from "./bpf/link.ts";
