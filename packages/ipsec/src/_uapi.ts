// Constants and struct layouts of include/uapi/linux/xfrm.h (checked with
// sizeof/offsetof against the installed header).

/** Message types (`XFRM_MSG_*`). */
export const XFRM_MSG = {
  NEWSA: 0x10,
  DELSA: 0x11,
  GETSA: 0x12,
  NEWPOLICY: 0x13,
  DELPOLICY: 0x14,
  GETPOLICY: 0x15,
  ALLOCSPI: 0x16,
  ACQUIRE: 0x17,
  EXPIRE: 0x18,
  UPDPOLICY: 0x19,
  UPDSA: 0x1a,
  POLEXPIRE: 0x1b,
  FLUSHSA: 0x1c,
  FLUSHPOLICY: 0x1d,
  NEWAE: 0x1e,
  GETAE: 0x1f,
  REPORT: 0x20,
  MIGRATE: 0x21,
  NEWSADINFO: 0x22,
  GETSADINFO: 0x23,
  NEWSPDINFO: 0x24,
  GETSPDINFO: 0x25,
  MAPPING: 0x26,
  SETDEFAULT: 0x27,
  GETDEFAULT: 0x28,
} as const;

/** The names of {@link XFRM_MSG}, by number (for errors and events). */
export const XFRM_MSG_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(XFRM_MSG).map(([k, v]) => [v, `XFRM_MSG_${k}`]),
);

/** Attribute types (`enum xfrm_attr_type_t`). */
export const XFRMA = {
  UNSPEC: 0,
  ALG_AUTH: 1,
  ALG_CRYPT: 2,
  ALG_COMP: 3,
  ENCAP: 4,
  TMPL: 5,
  SA: 6,
  POLICY: 7,
  SEC_CTX: 8,
  LTIME_VAL: 9,
  REPLAY_VAL: 10,
  REPLAY_THRESH: 11,
  ETIMER_THRESH: 12,
  SRCADDR: 13,
  COADDR: 14,
  LASTUSED: 15,
  POLICY_TYPE: 16,
  MIGRATE: 17,
  ALG_AEAD: 18,
  KMADDRESS: 19,
  ALG_AUTH_TRUNC: 20,
  MARK: 21,
  TFCPAD: 22,
  REPLAY_ESN_VAL: 23,
  SA_EXTRA_FLAGS: 24,
  PROTO: 25,
  ADDRESS_FILTER: 26,
  PAD: 27,
  OFFLOAD_DEV: 28,
  SET_MARK: 29,
  SET_MARK_MASK: 30,
  IF_ID: 31,
  MTIMER_THRESH: 32,
  SA_DIR: 33,
  NAT_KEEPALIVE_INTERVAL: 34,
  SA_PCPU: 35,
  IPTFS_DROP_TIME: 36,
  IPTFS_REORDER_WINDOW: 37,
  IPTFS_DONT_FRAG: 38,
  IPTFS_INIT_DELAY: 39,
  IPTFS_MAX_QSIZE: 40,
  IPTFS_PKT_SIZE: 41,
} as const;

/** Attributes of `XFRM_MSG_NEWSADINFO` (`enum xfrm_sadattr_type_t`). */
export const XFRMA_SAD = { CNT: 1, HINFO: 2 } as const;

/** Attributes of `XFRM_MSG_NEWSPDINFO` (`enum xfrm_spdattr_type_t`). */
export const XFRMA_SPD = { INFO: 1, HINFO: 2, IPV4_HTHRESH: 3, IPV6_HTHRESH: 4 } as const;

/** Multicast groups (`enum xfrm_nlgroups`). */
export const XFRMNLGRP = {
  ACQUIRE: 1,
  EXPIRE: 2,
  SA: 3,
  POLICY: 4,
  AEVENTS: 5,
  REPORT: 6,
  MIGRATE: 7,
  MAPPING: 8,
} as const;

/** An infinite lifetime limit (`XFRM_INF`). */
export const XFRM_INF = 0xffff_ffff_ffff_ffffn;

/** Policy directions (`XFRM_POLICY_IN`...). */
export const XFRM_POLICY_DIR = { in: 0, out: 1, fwd: 2 } as const;
/** Policy actions. */
export const XFRM_POLICY_ALLOW = 0;
/** Policy actions. */
export const XFRM_POLICY_BLOCK = 1;
/** Policy flags. */
export const XFRM_POLICY_LOCALOK = 1;
/** Policy flags. */
export const XFRM_POLICY_ICMP = 2;
/** Policy types (`XFRM_POLICY_TYPE_*`). */
export const XFRM_POLICY_TYPE = { main: 0, sub: 1, any: 255 } as const;

/** Modes (`XFRM_MODE_*`). */
export const XFRM_MODE = { transport: 0, tunnel: 1, ro: 2, in_trigger: 3, beet: 4 } as const;

/** IPsec protocols (`IPPROTO_ESP`, `IPPROTO_AH`, `IPPROTO_COMP`). */
export const IPPROTO_XFRM = { esp: 50, ah: 51, comp: 108 } as const;
/** Any IPsec protocol (`IPSEC_PROTO_ANY`), as a flush takes it. */
export const IPSEC_PROTO_ANY = 255;

/** State flags (`XFRM_STATE_*`). */
export const XFRM_STATE = {
  noecn: 1,
  "decap-dscp": 2,
  nopmtudisc: 4,
  wildrecv: 8,
  icmp: 16,
  "af-unspec": 32,
  align4: 64,
  esn: 128,
} as const;

/** Address families. */
export const AF_UNSPEC = 0;
/** Address families. */
export const AF_INET = 2;
/** Address families. */
export const AF_INET6 = 10;

/** Struct sizes in bytes. */
export const SIZEOF = {
  address: 16,
  xfrm_id: 24,
  selector: 56,
  lifetime_cfg: 64,
  lifetime_cur: 32,
  stats: 12,
  usersa_info: 224,
  usersa_id: 24,
  userpolicy_info: 168,
  userpolicy_id: 64,
  userpolicy_type: 6,
  userspi_info: 232,
  user_tmpl: 64,
  user_expire: 232,
  user_polexpire: 176,
  user_acquire: 280,
  usersa_flush: 1,
  aevent_id: 48,
  user_report: 60,
  user_mapping: 64,
  encap_tmpl: 24,
  mark: 8,
  replay_state: 12,
  replay_state_esn: 24,
  algo: 68,
  algo_auth: 72,
  algo_aead: 72,
  spdinfo: 24,
  spdhinfo: 8,
  sadhinfo: 8,
  spdhthresh: 2,
} as const;

/** Field offsets of `struct xfrm_selector`. */
export const SEL = {
  daddr: 0,
  saddr: 16,
  dport: 32,
  dport_mask: 34,
  sport: 36,
  sport_mask: 38,
  family: 40,
  prefixlen_d: 42,
  prefixlen_s: 43,
  proto: 44,
  ifindex: 48,
  user: 52,
} as const;

/** Field offsets of `struct xfrm_usersa_info`. */
export const SA_INFO = {
  sel: 0,
  id: 56,
  saddr: 80,
  lft: 96,
  curlft: 160,
  stats: 192,
  seq: 204,
  reqid: 208,
  family: 212,
  mode: 214,
  replay_window: 215,
  flags: 216,
} as const;

/** Field offsets of `struct xfrm_userpolicy_info`. */
export const POLICY_INFO = {
  sel: 0,
  lft: 56,
  curlft: 120,
  priority: 152,
  index: 156,
  dir: 160,
  action: 161,
  flags: 162,
  share: 163,
} as const;

/** Field offsets of `struct xfrm_userpolicy_id`. */
export const POLICY_ID = { sel: 0, index: 56, dir: 60 } as const;

/** Field offsets of `struct xfrm_usersa_id`. */
export const SA_ID = { daddr: 0, spi: 16, family: 20, proto: 22 } as const;

/** Field offsets of `struct xfrm_id`. */
export const ID = { daddr: 0, spi: 16, proto: 20 } as const;

/** Field offsets of `struct xfrm_user_tmpl`. */
export const TMPL = {
  id: 0,
  family: 24,
  saddr: 28,
  reqid: 44,
  mode: 48,
  share: 49,
  optional: 50,
  aalgos: 52,
  ealgos: 56,
  calgos: 60,
} as const;

/** Field offsets of `struct xfrm_user_acquire`. */
export const ACQUIRE = {
  id: 0,
  saddr: 24,
  sel: 40,
  policy: 96,
  aalgos: 264,
  ealgos: 268,
  calgos: 272,
  seq: 276,
} as const;

/** Field offsets of `struct xfrm_userspi_info`. */
export const SPI_INFO = { info: 0, min: 224, max: 228 } as const;

/** Field offsets of `struct xfrm_user_expire` and `struct xfrm_user_polexpire`. */
export const EXPIRE = { stateHard: 224, policyHard: 168 } as const;

/** Field offsets of `struct xfrm_user_mapping`. */
export const MAPPING = { id: 0, reqid: 24, old_saddr: 28, new_saddr: 44, old_sport: 60, new_sport: 62 } as const;

/** Field offsets of `struct xfrm_aevent_id`. */
export const AEVENT_ID = { sa_id: 0, saddr: 24, flags: 40, reqid: 44 } as const;

/** Field offsets of `struct xfrm_user_report`. */
export const REPORT = { proto: 0, sel: 4 } as const;
