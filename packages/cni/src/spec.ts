// The CNI specification's types and parsers shared by the plugin's modules:
// the network config, the environment, the result, the error, the versions.
export { CNI_ERROR_CODES, CniError, type CniErrorCode, type CniErrorJson } from "./spec/cni_error.ts";
export { CNI_COMMANDS, type CniCommand, type CniEnv } from "./spec/env.ts";
export type { CniAttachment, CniLabels, IpamConf, NetConf } from "./spec/netconf.ts";
export { parseCniEnv } from "./spec/parse_env.ts";
export { parseNetConf } from "./spec/parse_netconf.ts";
export type { CniDns, CniInterface, CniIpConfig, CniResult, CniRoute, IpamResult } from "./spec/result.ts";
export { CNI_VERSION, CNI_VERSIONS } from "./spec/versions.ts";
