/**
 * The dp syscall gateway: everything that talks to the kernel.
 *
 * - bpf(2) objects as bytes: {@link createMap}, {@link loadProgram},
 *   pinning on bpffs, `BPF_PROG_TEST_RUN`;
 * - {@link Fd} lifetime with `close()`, `using` and a leak safety net;
 * - bpf_links and attachments: {@link createLink}, {@link attachProgram},
 *   {@link queryPrograms}, objects by id ({@link programById});
 * - the ELF/BTF object loader: {@link readCollectionSpec},
 *   {@link loadCollection} (CO-RE, global data, `.kconfig`, pinned maps);
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
export type { FormatLogOptions, NotSupportedErrorOptions, SyscallErrorOptions, VerifierErrorOptions, VerifierSource } from "./errors.ts";
export { Fd } from "./fd.ts";
export { MAP_FLAGS, validateMapSpec } from "./map_spec.ts";
export type { MapBtf, MapSpec, MapType } from "./map_spec.ts";
export { BpfMap, createMap, openPinnedMap } from "./map.ts";
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
} from "./map.ts";
export { BpfProgram, loadProgram, openPinnedProgram } from "./program.ts";
export type {
  AttachType,
  LoadProgramOptions,
  ProgramBtf,
  ProgramInfo,
  ProgramSpec,
  ProgramType,
  TestRunOptions,
  TestRunResult,
} from "./program.ts";
export { DEFAULT_BPFFS, isBpffs, mountBpffs, unpin } from "./pin.ts";
export {
  compareKernelVersions,
  hasHelper,
  hasLinkType,
  hasMapType,
  hasProgramType,
  hasTcx,
  kernelVersion,
  parseKernelVersion,
} from "./features.ts";
export type { HelperName, KernelVersion, LinkType } from "./features.ts";
export { currentNetns, createNetns, deleteNetns, Netns, NETNS_RUN_DIR, openNetns, withNetns } from "./netns.ts";
export { parseCpuList, possibleCpus } from "./cpus.ts";
export { interfaceIndex, interfaceName } from "./iface.ts";
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
} from "./netlink_codec.ts";
export type { NetlinkAttribute, NetlinkMessage } from "./netlink_codec.ts";
export { NetlinkError, NetlinkSocket, openNetlink } from "./netlink_socket.ts";
export type {
  NetlinkErrorOptions,
  NetlinkMessagesReceived,
  NetlinkOverrun,
  NetlinkProtocol,
  NetlinkReceived,
  NetlinkReceiveOptions,
  OpenNetlinkOptions,
} from "./netlink_socket.ts";
export { formatIp, formatMac, parseCidr, parseIp, parseMac } from "./net_addr.ts";
export type { IpAddress, IpFamily, IpPrefix } from "./net_addr.ts";
export { decodeAttributes, encodeAttributes } from "./netlink_schema.ts";
export type {
  AttributeField,
  AttributeKind,
  AttributeSchema,
  AttributeValue,
  AttributeValues,
  DecodedAttributes,
} from "./netlink_schema.ts";
export { ObjectError, parseCollectionSpec, readCollectionSpec } from "./collection_spec.ts";
export type {
  CollectionMapSpec,
  CollectionProgramSpec,
  CollectionSpec,
  InstructionReference,
  ParseCollectionOptions,
  ProgramCoreRelo,
  ProgramFuncInfo,
  ProgramLineInfo,
} from "./collection_spec.ts";
export { Collection, loadCollection, MapCompatibilityError, Variable } from "./collection.ts";
export type { LoadCollectionOptions } from "./collection.ts";
export { ConstantSet } from "./variables.ts";
export type { VariableSpec, VariableValue } from "./variables.ts";
export { CORE_POISON, CoreRelocationError } from "./core_relo.ts";
export type { CoreRelocationResult } from "./core_relo.ts";
export { KconfigError } from "./kconfig.ts";
export type { KconfigExtern } from "./kconfig.ts";
export { Btf, BtfSyntaxError, parseBtf } from "./btf.ts";
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
} from "./btf.ts";
export type { BtfCoreRelo, BtfCoreReloKind, BtfExt, BtfFuncInfo, BtfLineInfo } from "./btf_ext.ts";
export { kernelBtf } from "./btf_load.ts";
export { ElfError } from "./elf.ts";
export { MapDefinitionError } from "./object_maps.ts";
export type { MapInitialValue, MapPinning } from "./object_maps.ts";
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
} from "./link.ts";
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
} from "./link.ts";
