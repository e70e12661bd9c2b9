// bench/policy: the policy engine's full resolve against its incremental
// updates, measured in the same run on the same state.
//
//   full      engine.resolveAll(): every endpoint's entries from scratch
//             (selector matching over all identities included)
//   identity  engine.addIdentity() of one new identity that several
//             rules' selectors match (then removed again, untimed)
//   rule      engine.addRule() replacing one named rule with a changed
//             version (alternating between two versions)
//
// 10k identities (plus 100 CIDR identities), 500 rules, 200 endpoints.
import { cpus, release } from "node:os";
import {
  createLocalIdentityAllocator,
  createPolicyEngine,
  type EgressRule,
  type IngressRule,
  LabelSet,
  type PolicyEngine,
  type PolicyRule,
} from "@dp/datapath";

const IDENTITIES = 10_000;
const CIDR_IDENTITIES = 100;
const RULES = 500;
const ENDPOINTS = 200;
const APPS = 500;
const NAMESPACES = 20;
const FULL_ROUNDS = 5;
const INCR_ROUNDS = 50;
const TARGET = 50;

function identityLabels(i: number): string[] {
  return [`k8s:app=app${i % APPS}`, `k8s:ns=ns${i % NAMESPACES}`, `k8s:tier=t${i % 5}`, `k8s:pod=p${i}`];
}

function rule(k: number, variant: number): PolicyRule {
  const app = (k * 7) % APPS;
  const ns = k % NAMESPACES;
  const ingress: IngressRule[] = [
    {
      fromEndpoints: [
        { matchLabels: { "k8s:app": `app${(app + 1 + variant) % APPS}` } },
        { matchLabels: { app: `app${(app + 2) % APPS}` } },
      ],
      toPorts: [
        {
          ports: [
            { port: 80 + (k % 3), protocol: "TCP" },
            { port: 8000, endPort: 8000 + (k % 64), protocol: "TCP" },
          ],
        },
      ],
    },
  ];
  if (k % 10 === 0) {
    ingress.push({
      fromEndpoints: [
        { matchLabels: { ns: `ns${ns}` }, matchExpressions: [{ key: "tier", operator: "In", values: ["t1", "t2"] }] },
      ],
    });
  }
  const egress: EgressRule[] = [
    {
      toEndpoints: [{ matchLabels: { app: `app${(app + 3) % APPS}` } }],
      toPorts: [{ ports: [{ port: 5432, protocol: "TCP" }] }],
    },
    { toEntities: ["host"], toPorts: [{ ports: [{ port: 53 }] }] },
  ];
  if (k % 25 === 0)
    egress.push({
      toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] }],
      toPorts: [{ ports: [{ port: 443, protocol: "TCP" }] }],
    });
  const selector = k % 50 === 0 ? { matchLabels: { ns: `ns${ns}` } } : { matchLabels: { app: `app${k % ENDPOINTS}` } };
  const r: PolicyRule = { name: `r${k}`, endpointSelector: selector, ingress, egress };
  return k % 20 === 0
    ? {
        ...r,
        ingressDeny: [
          { fromEndpoints: [{ matchLabels: { tier: "t4" } }], toPorts: [{ ports: [{ port: 22, protocol: "TCP" }] }] },
        ],
      }
    : r;
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function countEntries(engine: PolicyEngine): number {
  let n = 0;
  for (const id of engine.endpointIds()) {
    const p = engine.endpointPolicy(id);
    n += (p?.ingress.entries.length ?? 0) + (p?.egress.entries.length ?? 0);
  }
  return n;
}

/** The incremental state must equal a full resolve (checked outside the timings). */
function check(engine: PolicyEngine, what: string): void {
  const full = engine.resolveAll();
  for (const [id, p] of full) {
    if (JSON.stringify(engine.endpointPolicy(id)) !== JSON.stringify(p)) {
      throw new Error(`policy: after ${what}, endpoint ${id}'s incremental entries differ from a full resolve`);
    }
  }
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export async function main(_args: readonly string[]): Promise<void> {
  console.log(`policy: node ${process.version}, ${cpus()[0]?.model ?? "?"} x${cpus().length}, linux ${release()}`);
  const alloc = createLocalIdentityAllocator();
  const engine = createPolicyEngine({ allocator: alloc });
  let start = process.hrtime.bigint();
  for (let i = 0; i < IDENTITIES; i++) await alloc.allocate(identityLabels(i));
  for (let i = 0; i < CIDR_IDENTITIES; i++) await alloc.allocateCidr(`10.${i}.0.0/16`);
  console.log(
    `policy: ${IDENTITIES} identities + ${CIDR_IDENTITIES} CIDR identities allocated and followed in ${ms(start).toFixed(0)} ms`,
  );

  start = process.hrtime.bigint();
  for (let j = 0; j < ENDPOINTS; j++) {
    const identity = await alloc.allocate(identityLabels(j));
    engine.upsertEndpoint({ id: j + 1, identity: identity.id });
  }
  const rules = Array.from({ length: RULES }, (_, k) => rule(k, 0));
  engine.setRules(rules);
  const entries = countEntries(engine);
  console.log(
    `policy: ${ENDPOINTS} endpoints, ${RULES} rules set in ${ms(start).toFixed(0)} ms: ${entries} map entries`,
  );
  check(engine, "setRules");

  const full: number[] = [];
  const incrIdentity: number[] = [];
  const incrRule: number[] = [];
  let touchedByIdentity = 0;
  let touchedByRule = 0;
  for (let round = 0; round < FULL_ROUNDS; round++) {
    gc();
    start = process.hrtime.bigint();
    const all = engine.resolveAll();
    full.push(ms(start));
    if (all.size !== ENDPOINTS) throw new Error("policy: full resolve missed endpoints");

    for (let i = 0; i < INCR_ROUNDS / FULL_ROUNDS; i++) {
      // A new pod of an app that several rules allow from, in a namespace that namespace-wide rules select.
      const n = IDENTITIES + round * 100 + i;
      const identity = {
        id: 60_000 + (n % 5000),
        labels: LabelSet.from(
          identityLabels((n % APPS) + APPS * 3)
            .slice(0, 3)
            .concat(`k8s:pod=new${n}`),
        ),
      };
      start = process.hrtime.bigint();
      const diffs = engine.addIdentity(identity);
      incrIdentity.push(ms(start));
      touchedByIdentity = Math.max(touchedByIdentity, diffs.length);
      if (diffs.length === 0) throw new Error("policy: the new identity reached no endpoint");
      engine.removeIdentity(identity.id);

      const k = (round * 37 + i * 11) % RULES;
      start = process.hrtime.bigint();
      const ruleDiffs = engine.addRule(rule(k, 1 + ((round + i) % 2)));
      incrRule.push(ms(start));
      touchedByRule = Math.max(touchedByRule, ruleDiffs.length);
      if (ruleDiffs.length === 0) throw new Error("policy: the changed rule changed nothing");
      engine.addRule(rule(k, 0));
    }
  }
  check(engine, "the incremental rounds");
  engine.addIdentity({ id: 64_999, labels: LabelSet.from(["k8s:app=app1", "k8s:ns=ns1", "k8s:tier=t1"]) });
  engine.addRule(rule(3, 1));
  check(engine, "one more identity and rule");
  engine.close();

  const fullMs = median(full);
  const idMs = median(incrIdentity);
  const ruleMs = median(incrRule);
  console.log(`policy: full resolve ${full.map((x) => x.toFixed(1)).join(" ")} ms (median ${fullMs.toFixed(1)})`);
  console.log(
    `policy: new identity median ${idMs.toFixed(3)} ms over ${incrIdentity.length} (up to ${touchedByIdentity} endpoints changed)`,
  );
  console.log(
    `policy: changed rule median ${ruleMs.toFixed(3)} ms over ${incrRule.length} (up to ${touchedByRule} endpoints changed)`,
  );
  const idRatio = fullMs / idMs;
  const ruleRatio = fullMs / ruleMs;
  console.log(
    `policy: full/identity ${idRatio.toFixed(0)}x, full/rule ${ruleRatio.toFixed(0)}x (target >= ${TARGET}x: ${idRatio >= TARGET && ruleRatio >= TARGET ? "met" : "NOT met"})`,
  );
  console.log(
    `policy full_ms=${fullMs.toFixed(1)} incr_identity_ms=${idMs.toFixed(3)} incr_rule_ms=${ruleMs.toFixed(3)}`,
  );
}
