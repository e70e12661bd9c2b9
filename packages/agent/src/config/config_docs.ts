import { CONFIG_KEYS, type ConfigKeyInfo } from "./config_keys.ts";

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** A default as the docs show it: a bare value as code (`<state-dir>/dp.sock` is no HTML tag), words as words. */
function defaultCell(text: string): string {
  return /\s/.test(text) ? cell(text) : `\`${text}\``;
}

function table(keys: readonly ConfigKeyInfo[]): string[] {
  return [
    "| Key | Value | Default | Description |",
    "| --- | --- | --- | --- |",
    ...keys.map((k) => `| \`${k.key}\` | ${cell(k.expected)} | ${defaultCell(k.default)} | ${cell(k.description)} |`),
  ];
}

/**
 * Renders the reference of every config key (docs/config.md) from
 * {@link CONFIG_KEYS}: how values are read, the keys in two tables
 * (supported; accepted but not supported yet), the host routing fallback
 * rules and the contradictions. The repository's docs/config.md is this
 * text formatted with Prettier (`npm run gen:config-docs`), and a test
 * fails when the two differ.
 *
 * @returns Markdown.
 * @example Every key is documented
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONFIG_KEYS, renderConfigDocs } from "@dp/agent";
 * const md = renderConfigDocs();
 * assert.ok(CONFIG_KEYS.every((k) => md.includes(`| \`${k.key}\` |`)));
 * ```
 */
export function renderConfigDocs(): string {
  const supported = CONFIG_KEYS.filter((k) => k.status === "supported");
  const later = CONFIG_KEYS.filter((k) => k.status === "not-supported-yet");
  return [
    "<!-- Generated from CONFIG_KEYS (packages/agent/src/config/) by `npm run gen:config-docs`; do not edit. A unit test fails when this file and the keys differ. -->",
    "",
    "# Agent configuration",
    "",
    "`dp agent` reads a YAML or JSON file (`--config FILE`) in the shape of Cilium's `cilium-config` ConfigMap, with Cilium's key names where the concept is the same. Every key can also be given as a flag with the same name (`--enable-ipv6=false`); flags win over the file. In code, `loadConfig({ file, flags })` from `@dp/agent` does the same and `resolveConfig(config, kernel)` decides the modes.",
    "",
    "```yaml",
    "# /etc/dp/config.yaml",
    "devices: eth0",
    "ipv4-range: 10.200.0.0/16",
    'enable-ipv6: "false"',
    "bpf-ct-global-tcp-max: 524288",
    'prometheus-serve-addr: ":9962"',
    "```",
    "",
    "## Values",
    "",
    '- **Booleans**: `true`/`false`, or the strings Cilium\'s ConfigMaps hold: `"True"`, `"false"`, `"1"`, `"0"` (the forms of Go\'s `strconv.ParseBool`).',
    '- **Numbers** may be written as strings (`"524288"`, `"0.0025"`).',
    '- **Lists** are YAML lists or strings separated by commas or spaces (`"eth0,eth1"`, `"eth0 eth1"`).',
    '- **Durations** take Go\'s form: `"90s"`, `"5m"`, `"1m30s"`; they are stored that way (`"1m30s"`).',
    '- An empty value (`""` or nothing) for a key whose value is not a string means its default.',
    "- A whole ConfigMap manifest (`kind: ConfigMap`) is read from its `data`.",
    '- **Unknown keys** are warnings (`unknown key "foo"`, with the closest known key when one is near), printed at start and listed by `dp status`: Cilium\'s configs carry many keys dp has no use for.',
    "- **Bad values** stop the agent before it touches the kernel, with exit code 2 and every problem in one message naming the key, the value and the expected form: `Invalid config: cluster-id: 300 is out of range (expected an integer from 0 to 255)`.",
    "",
    "## Supported keys",
    "",
    ...table(supported),
    "",
    "## Accepted, not supported yet",
    "",
    "These keys are read and checked, and do nothing yet. When one asks for something (`true`, a non-empty value, a value other than the default), `dp status` lists it under the features not supported yet, with why.",
    "",
    ...table(later),
    "",
    "## Host routing",
    "",
    "As in Cilium, BPF host routing (`bpf_redirect_peer` into pods, `bpf_redirect_neigh` out of the node) is chosen unless something rules it out; then the agent falls back to legacy host routing and `dp status` shows the reason:",
    "",
    "1. `enable-host-legacy-routing: true`: legacy.",
    "2. `enable-endpoint-routes: true`: legacy (BPF host routing is incompatible with per-endpoint routes).",
    "3. `enable-ipv4-masquerade` or `enable-ipv6-masquerade` on without `enable-bpf-masquerade`: legacy (iptables masquerading needs the host stack).",
    "4. `enable-ipsec: true`: legacy.",
    "5. The kernel lacks `bpf_redirect_peer` or `bpf_redirect_neigh` (Linux 5.10+): legacy.",
    "6. Otherwise BPF host routing.",
    "",
    "Programs are attached with tcx links when `enable-tcx` is true and the kernel has them (Linux 6.6+), else as netlink cls_bpf filters.",
    "",
    "## Contradictions",
    "",
    "These combinations are errors:",
    "",
    "- `enable-ipv4: false` with `enable-ipv6: false` (no address family left);",
    "- `routing-mode: native` with `tunnel: vxlan` or `geneve`, and `routing-mode: tunnel` with `tunnel: disabled`;",
    "- `auto-direct-node-routes: true` with tunnel routing;",
    "- `enable-ipsec: true` with `enable-wireguard: true`;",
    '- a `cluster-id` other than 0 with the cluster name `"default"`.',
    "",
    "The agent also checks, before it changes anything, that every device in `devices` exists in the node's namespace.",
    "",
  ].join("\n");
}
