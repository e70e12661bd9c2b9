import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolveMapSizes } from "@dp/datapath";
import * as prettier from "prettier";
import { describe, expect, test } from "vitest";
import { CONFIG_KEYS, ConfigError, loadConfig, renderConfigDocs } from "../mod.ts";

const DOCS = fileURLToPath(new URL("../../../../docs/config.md", import.meta.url));

describe("renderConfigDocs()", () => {
  test("docs/config.md is renderConfigDocs() formatted with Prettier (run `npm run gen:config-docs` after changing a key)", async () => {
    const options = (await prettier.resolveConfig(DOCS)) ?? {};
    const expected = await prettier.format(renderConfigDocs(), { ...options, filepath: DOCS });
    expect(readFileSync(DOCS, "utf8")).toBe(expected);
  });

  test("renderConfigDocs() lists every key once, in the table of its status", () => {
    const md = renderConfigDocs();
    const later = md.indexOf("## Accepted, not supported yet");
    for (const k of CONFIG_KEYS) {
      const row = `| \`${k.key}\` |`;
      const at = md.indexOf(row);
      expect(at, k.key).toBeGreaterThan(0);
      expect(md.indexOf(row, at + 1), k.key).toBe(-1);
      expect(at > later, k.key).toBe(k.status === "not-supported-yet");
    }
  });

  test("renderConfigDocs() shows the text of CONFIG_KEYS", () => {
    const md = renderConfigDocs();
    for (const k of CONFIG_KEYS) {
      expect(md).toContain(k.description);
      expect(md).toContain(k.expected);
    }
  });
});

describe("CONFIG_KEYS", () => {
  test("CONFIG_KEYS lists the keys of the contract with their status", () => {
    const supported = CONFIG_KEYS.filter((k) => k.status === "supported").map((k) => k.key);
    expect(supported).toEqual([
      "cluster-name",
      "cluster-id",
      "state-dir",
      "socket-path",
      "bpf-root",
      "netns",
      "devices",
      "ipv4-range",
      "ipv6-range",
      "enable-ipv4",
      "enable-ipv6",
      "enable-host-legacy-routing",
      "enable-tcx",
      "bpf-ct-global-tcp-max",
      "bpf-ct-global-any-max",
      "bpf-policy-map-max",
      "bpf-map-dynamic-size-ratio",
      "conntrack-gc-interval",
      "ipam",
      "ec2-api-endpoint",
      "eni-imds-endpoint",
      "eni-pre-allocate",
      "eni-min-allocate",
      "eni-max-above-watermark",
      "debug",
      "log-format",
      "prometheus-serve-addr",
      "agent-teardown-on-stop",
      "kvstore",
      "etcd-config",
      "etcd-config-path",
      "identity-allocation-mode",
      "node-name",
      "enable-ipsec",
      "ipsec-key-file",
    ]);
    expect(CONFIG_KEYS.filter((k) => k.status === "not-supported-yet").map((k) => k.key)).toEqual([
      "tunnel",
      "routing-mode",
      "auto-direct-node-routes",
      "bpf-nat-global-max",
      "bpf-lb-algorithm",
      "bpf-lb-map-max",
      "enable-bpf-masquerade",
      "enable-ipv4-masquerade",
      "enable-ipv6-masquerade",
      "egress-masquerade-interfaces",
      "prefilter-device",
      "enable-endpoint-routes",
      "enable-wireguard",
      "kube-proxy-replacement",
      "enable-l7-proxy",
      "sockops-enable",
    ]);
  });

  test("CONFIG_KEYS gives the choices of every choice key, and those are accepted", () => {
    for (const k of CONFIG_KEYS) {
      expect(k.choices !== undefined, k.key).toBe(k.kind === "choice");
      for (const choice of k.choices ?? []) {
        // kvstore etcd needs an etcd config, identities in the kvstore need kvstore etcd.
        const doc =
          (k.key === "kvstore" && choice === "etcd") || (k.key === "identity-allocation-mode" && choice === "kvstore")
            ? { kvstore: "etcd", "etcd-config-path": "/etc/dp/etcd.yaml", [k.key]: choice }
            : { [k.key]: choice };
        expect(() => loadConfig({ text: JSON.stringify(doc), format: "json" }), `${k.key}: ${choice}`).not.toThrow();
      }
    }
  });

  test("CONFIG_KEYS cannot be changed", () => {
    expect(Object.isFrozen(CONFIG_KEYS)).toBe(true);
    expect(Object.isFrozen(CONFIG_KEYS[0])).toBe(true);
  });
});

describe("map sizes follow @dp/datapath", () => {
  // The ranges in the docs and messages come from resolveMapSizes itself:
  // each bound is accepted by both, one past it refused by both.
  test.each(["bpf-ct-global-tcp-max", "bpf-ct-global-any-max", "bpf-policy-map-max"] as const)(
    "loadConfig() accepts %s exactly where resolveMapSizes() does",
    (key) => {
      const expected = CONFIG_KEYS.find((k) => k.key === key)?.expected ?? "";
      const m = /^an integer from (\d+) to (\d+)$/.exec(expected);
      expect(m, expected).not.toBeNull();
      const [min, max] = [Number(m?.[1]), Number(m?.[2])];
      for (const value of [min - 1, min, max, max + 1]) {
        const datapath = (() => {
          try {
            resolveMapSizes({ [key]: value }, 2 ** 30);
            return true;
          } catch (e) {
            if (e instanceof RangeError) return false;
            throw e;
          }
        })();
        const config = (() => {
          try {
            loadConfig({ flags: { [key]: String(value) } });
            return true;
          } catch (e) {
            if (e instanceof ConfigError) return false;
            throw e;
          }
        })();
        expect([value, config], key).toEqual([value, datapath]);
        expect(datapath).toBe(value >= min && value <= max);
      }
    },
  );

  test("loadConfig() accepts bpf-map-dynamic-size-ratio where resolveMapSizes() does, and 0 for off", () => {
    for (const [value, ok] of [
      [0, true],
      [1e-9, true],
      [1, true],
      [1.0001, false],
      [-0.5, false],
    ] as const) {
      const accepted = (() => {
        try {
          loadConfig({ flags: { "bpf-map-dynamic-size-ratio": String(value) } });
          return true;
        } catch {
          return false;
        }
      })();
      expect(accepted, String(value)).toBe(ok);
    }
  });
});
