import type { IdentityAllocator, Subscription } from "../identity/allocator.ts";
import { classifyIdentity, type Identity } from "../identity/identity.ts";
import { RESERVED } from "../identity/_reserved.ts";
import { LabelSet, type LabelsInput } from "../labels/label_set.ts";
import { entryContains } from "./_lpm.ts";
import { IP_PROTOCOLS, type PolicyEntry } from "./entry.ts";
import { explainDirection } from "./_explain_direction.ts";
import type {
  DirectionExplanation,
  PolicyExplainQuery,
  PolicyExplanation,
  PolicyPeerRef,
  PolicyRuleRef,
} from "./explain.ts";
import type { PolicyRule } from "./rule.ts";
import { type CompiledRule, compileRules, type L4, type Peer, type Section } from "./_compile.ts";
import { PolicyValidationError } from "./validate.ts";

/**
 * An endpoint as the policy engine sees it: its id (the key of its
 * policy map), its own identity and the labels rules select it by.
 *
 * @example An endpoint whose labels come from its identity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, LabelSet } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.addIdentity({ id: 300, labels: LabelSet.from(["k8s:app=web"]) });
 * engine.upsertEndpoint({ id: 7, identity: 300 });
 * assert.equal(engine.endpointPolicy(7)?.identity, 300);
 * ```
 */
export interface PolicyEndpoint {
  /** The endpoint id (0-65535). */
  readonly id: number;
  /** The endpoint's security identity. */
  readonly identity: number;
  /** The labels rules select the endpoint by; those of its identity when omitted. */
  readonly labels?: LabelsInput;
}

/**
 * The resolved policy of one endpoint in one direction.
 *
 * @example Reading entries
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ endpointSelector: {}, egress: [{ toEntities: ["all"], toPorts: [{ ports: [{ port: 53, protocol: "UDP" }] }] }] }]);
 * const egress = engine.endpointPolicy(1)?.egress;
 * assert.equal(egress?.enforced, true);
 * assert.deepEqual(egress?.entries.map((e) => [e.identity, e.protocol, e.port, e.prefixLength]), [[0, 17, 53, 64]]);
 * ```
 */
export interface DirectionPolicy {
  /** Whether some rule selects the endpoint in this direction (then what no entry allows is denied). */
  readonly enforced: boolean;
  /** The map entries, sorted by identity, protocol, port and prefix length. */
  readonly entries: readonly PolicyEntry[];
}

/**
 * The resolved policy of one endpoint: what its policy map and the
 * enforcement flags of its endpoint entry must hold.
 *
 * @example Both directions
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * const policy = engine.endpointPolicy(1);
 * assert.equal(policy?.ingress.enforced, false);
 * assert.equal(policy?.egress.entries.length, 0);
 * ```
 */
export interface EndpointPolicy {
  /** The endpoint id. */
  readonly endpointId: number;
  /** The endpoint's identity. */
  readonly identity: number;
  /** Incoming traffic. */
  readonly ingress: DirectionPolicy;
  /** Outgoing traffic. */
  readonly egress: DirectionPolicy;
}

/**
 * How one endpoint's policy changed. To apply it, write the enforcement
 * flags when `enforcementChanged`, then set every entry of `added` (new
 * keys and keys whose value changed) and delete the keys of `removed`;
 * the two never share a key.
 *
 * @example A new identity reaches an endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, LabelSet } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { "k8s:role": "client" } }] }] }]);
 * const diffs = engine.addIdentity({ id: 400, labels: LabelSet.from(["k8s:role=client"]) });
 * assert.equal(diffs.length, 1);
 * assert.equal(diffs[0]?.enforcementChanged, false);
 * assert.deepEqual(diffs[0]?.added.map((e) => e.identity), [400]);
 * ```
 */
export interface EndpointPolicyDiff {
  /** The endpoint. */
  readonly endpointId: number;
  /** Whether an enforcement flag changed. */
  readonly enforcementChanged: boolean;
  /** The enforcement flags now (both `false` after the endpoint was removed). */
  readonly enforcement: {
    /** The ingress flag (`DP_EP_F_INGRESS_ENFORCED`). */
    readonly ingress: boolean;
    /** The egress flag (`DP_EP_F_EGRESS_ENFORCED`). */
    readonly egress: boolean;
  };
  /** Entries to set: new keys or new values. */
  readonly added: readonly PolicyEntry[];
  /** Entries whose keys are gone. */
  readonly removed: readonly PolicyEntry[];
}

/**
 * Receives the diffs of each change of a {@link PolicyEngine}.
 *
 * @example Counting changed endpoints
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, type PolicyDiffListener } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * let changed = 0;
 * const listener: PolicyDiffListener = (diffs) => (changed += diffs.length);
 * engine.subscribe(listener);
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ endpointSelector: {}, ingress: [{}] }]);
 * assert.equal(changed, 1); // the upsert changed nothing, the rule set endpoint 1's flag
 * ```
 *
 * @param diffs One per endpoint whose policy changed.
 */
export type PolicyDiffListener = (diffs: readonly EndpointPolicyDiff[]) => void;

/**
 * Options of {@link createPolicyEngine}.
 *
 * @example Without an allocator
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, LabelSet, type PolicyEngineOptions } from "@dp/datapath";
 *
 * const options: PolicyEngineOptions = {};
 * const engine = createPolicyEngine(options);
 * engine.addIdentity({ id: 500, labels: LabelSet.from(["k8s:app=db"]) });
 * assert.equal(engine.identity(500)?.labels.key, "k8s:app=db");
 * assert.equal(engine.identity(2)?.labels.key, "reserved:world");
 * ```
 */
export interface PolicyEngineOptions {
  /**
   * An allocator to follow: the engine replays its identities and then
   * applies each change, telling its own subscribers the diffs. Without
   * one, call `addIdentity`/`removeIdentity` yourself (the reserved
   * identities are always known).
   *
   * @default undefined
   */
  readonly allocator?: IdentityAllocator;
}

/** A cached peer: the identities it selects, and the rules using it. */
interface PeerState {
  readonly peer: Peer;
  readonly ids: Set<number>;
  readonly users: Set<RuleState>;
}

interface SectionState {
  readonly section: Section;
  readonly cookie: number;
  readonly peers: readonly PeerState[];
}

interface RuleState {
  readonly seq: number;
  readonly compiled: CompiledRule;
  readonly sections: readonly SectionState[];
  readonly endpoints: Set<EndpointState>;
}

/** Entries of one direction: identity -> (numeric key -> entry). */
type DirEntries = Map<number, Map<number, PolicyEntry>>;

interface EndpointState {
  readonly id: number;
  identity: number;
  labels: LabelSet;
  readonly rules: Set<RuleState>;
  readonly enforced: [boolean, boolean];
  readonly entries: [DirEntries, DirEntries];
}

/** Collects the changes of one operation, one diff per endpoint. */
class DiffCollector {
  readonly #byEp = new Map<
    number,
    {
      before: [boolean, boolean];
      ep: EndpointState;
      added: Map<string, PolicyEntry>;
      removed: Map<string, PolicyEntry>;
    }
  >();

  touch(ep: EndpointState): { added: Map<string, PolicyEntry>; removed: Map<string, PolicyEntry> } {
    let d = this.#byEp.get(ep.id);
    if (d === undefined) {
      d = { before: [ep.enforced[0], ep.enforced[1]], ep, added: new Map(), removed: new Map() };
      this.#byEp.set(ep.id, d);
    }
    return d;
  }

  result(removedEndpoints: ReadonlySet<number> = new Set()): EndpointPolicyDiff[] {
    const out: EndpointPolicyDiff[] = [];
    for (const [id, d] of [...this.#byEp].sort((a, b) => a[0] - b[0])) {
      const gone = removedEndpoints.has(id);
      const enforcement = gone
        ? { ingress: false, egress: false }
        : { ingress: d.ep.enforced[0], egress: d.ep.enforced[1] };
      const enforcementChanged = enforcement.ingress !== d.before[0] || enforcement.egress !== d.before[1];
      if (!enforcementChanged && d.added.size === 0 && d.removed.size === 0) continue;
      out.push({
        endpointId: id,
        enforcementChanged,
        enforcement,
        added: [...d.added.values()].sort(compareEntries),
        removed: [...d.removed.values()].sort(compareEntries),
      });
    }
    return out;
  }
}

function l4Key(l: L4): number {
  return ((l.protocol << 16) | l.port) * 128 + l.prefixLength;
}

function entryKeyText(identity: number, egress: boolean, l: L4): string {
  return `${identity}/${egress ? 1 : 0}/${l.protocol}/${l.port}/${l.prefixLength}`;
}

function compareEntries(a: PolicyEntry, b: PolicyEntry): number {
  return (
    Number(a.egress) - Number(b.egress) ||
    a.identity - b.identity ||
    a.protocol - b.protocol ||
    a.port - b.port ||
    a.prefixLength - b.prefixLength
  );
}

function sameValue(a: PolicyEntry, b: PolicyEntry): boolean {
  return a.deny === b.deny && a.proxyPort === b.proxyPort && a.ruleCookie === b.ruleCookie;
}

/** Merges a contribution into an identity's entries: deny beats allow, then the earliest section's cookie. */
function contribute(
  map: Map<number, PolicyEntry>,
  identity: number,
  egress: boolean,
  l: L4,
  deny: boolean,
  cookie: number,
): void {
  const k = l4Key(l);
  const old = map.get(k);
  if (old !== undefined) {
    if (old.deny && !deny) return;
    if (old.deny === deny && old.ruleCookie <= cookie) return;
  }
  map.set(k, {
    identity,
    egress,
    protocol: l.protocol,
    port: l.port,
    prefixLength: l.prefixLength,
    deny,
    proxyPort: 0,
    ruleCookie: cookie,
  });
}

/** Drops allow entries that lie inside a deny entry of the same identity (LPM would find the allow first). */
function finish(map: Map<number, PolicyEntry>): Map<number, PolicyEntry> {
  const denies: PolicyEntry[] = [];
  for (const e of map.values()) if (e.deny) denies.push(e);
  if (denies.length === 0) return map;
  for (const [k, e] of map) {
    if (e.deny) continue;
    for (const d of denies) {
      if (entryContains(d, e)) {
        map.delete(k);
        break;
      }
    }
  }
  return map;
}

/**
 * Compiles a rule set or throws with every problem.
 *
 * @param rules The rules.
 * @param action For the message, such as `set rules`.
 * @param firstIndex The index the first rule gets when it has no name.
 * @returns The compiled rules.
 * @throws {PolicyValidationError} When any rule has a problem.
 * @throws {TypeError} When `rules` is not an array.
 */
function checkRules(rules: readonly unknown[], action: string, firstIndex = 0): CompiledRule[] {
  if (!Array.isArray(rules)) throw new TypeError(`Cannot ${action}: expected an array of rules, got ${typeof rules}`);
  const { rules: compiled, problems } = compileRules(rules, new Set(), firstIndex);
  if (problems.length > 0) throw new PolicyValidationError(problems, action);
  return compiled;
}

function checkEndpointId(id: unknown, action: string): number {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 65535) {
    throw new RangeError(`Cannot ${action}: the endpoint id must be an integer 0-65535, got ${String(id)}`);
  }
  return id;
}

function protocolNumber(p: PolicyExplainQuery["protocol"]): number {
  if (typeof p === "number") {
    if (!Number.isInteger(p) || p < 1 || p > 255)
      throw new RangeError(`Cannot explain: the protocol must be 1-255, got ${p}`);
    return p;
  }
  const n = (IP_PROTOCOLS as Readonly<Record<string, number>>)[p];
  if (n === undefined || n === 0)
    throw new TypeError(
      `Cannot explain: unknown protocol ${JSON.stringify(p)} (use TCP, UDP, SCTP, ICMP, ICMPv6 or a number)`,
    );
  return n;
}

/**
 * Resolves policy rules into per-endpoint policy map entries and keeps
 * them up to date incrementally. It holds the rules, the identities and
 * the endpoints; each change returns (and tells subscribers) the diffs of
 * the endpoints it affected, computed without touching the others:
 * selectors are cached with the identities they select, so a new
 * identity is tested once per distinct selector, and only entries for
 * that identity are recomputed, only on the endpoints whose rules use a
 * selector it matched. A rule change recomputes only the endpoints the
 * old or new rule selects, and on them only the identities its peers
 * select.
 *
 * Entries follow the datapath's lookup (see {@link lookupPolicy}): deny
 * beats allow; an allow entry is never emitted inside a deny entry of the
 * same identity; sections with peers and no ports allow every protocol;
 * sections with ports and no peers, `{}` selectors and the `all` entity
 * give identity 0 (any).
 *
 * @example Main path
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, createPolicyEngine } from "@dp/datapath";
 *
 * const allocator = createLocalIdentityAllocator();
 * const engine = createPolicyEngine({ allocator });
 * const web = await allocator.allocate(["k8s:app=web"]);
 * const client = await allocator.allocate(["k8s:app=client"]);
 * engine.upsertEndpoint({ id: 1, identity: web.id });
 * engine.setRules([{
 *   name: "web",
 *   endpointSelector: { matchLabels: { "k8s:app": "web" } },
 *   ingress: [{ fromEndpoints: [{ matchLabels: { "k8s:app": "client" } }], toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }] }],
 * }]);
 * const ok = engine.explain({ from: { identity: client.id }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
 * assert.equal(ok.verdict, "allowed");
 * assert.equal(ok.ingress?.rules[0]?.rule, "web");
 * const no = engine.explain({ from: { identity: client.id }, to: { endpoint: 1 }, protocol: "TCP", port: 22 });
 * assert.equal(no.ingress?.reason, "default-deny");
 * engine.close();
 * ```
 */
export class PolicyEngine {
  #identities = new Map<number, Identity>();
  #rules: RuleState[] = [];
  #peers = new Map<string, PeerState>();
  #endpoints = new Map<number, EndpointState>();
  #cookies = new Map<number, PolicyRuleRef>();
  #cookieSeq = 0;
  #ruleSeq = 0;
  #nextIndex = 0;
  #listeners = new Set<PolicyDiffListener>();
  #allocatorSub: Subscription | undefined;

  /**
   * Creates an engine knowing the reserved identities.
   *
   * @internal Use {@link createPolicyEngine}.
   * @param options The allocator to follow.
   */
  constructor(options: PolicyEngineOptions = {}) {
    for (const identity of RESERVED.values()) this.#identities.set(identity.id, identity);
    if (options.allocator !== undefined) {
      // The diffs reach this engine's subscribers through #emit().
      this.#allocatorSub = options.allocator.subscribe((ev) => {
        if (ev.type === "add") this.addIdentity(ev.identity);
        else this.removeIdentity(ev.identity.id);
      });
    }
  }

  /**
   * Stops following the allocator and drops the subscribers; idempotent.
   */
  close(): void {
    this.#allocatorSub?.unsubscribe();
    this.#allocatorSub = undefined;
    this.#listeners.clear();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Delivers the diffs of every later change to `listener` (including
   * those made by the followed allocator).
   *
   * @param listener Called synchronously after each change that changed something.
   * @returns The subscription.
   */
  subscribe(listener: PolicyDiffListener): Subscription {
    const listeners = this.#listeners;
    listeners.add(listener);
    return {
      unsubscribe(): void {
        listeners.delete(listener);
      },
      [Symbol.dispose](): void {
        listeners.delete(listener);
      },
    };
  }

  #emit(diffs: EndpointPolicyDiff[]): EndpointPolicyDiff[] {
    if (diffs.length > 0) for (const l of [...this.#listeners]) l(diffs);
    return diffs;
  }

  // --- identities -----------------------------------------------------------

  /**
   * Adds an identity (or changes the labels of a known one) and updates
   * the entries that select it.
   *
   * @param identity The identity.
   * @returns The diffs.
   * @throws {RangeError} When the number is 0 or in no identity range.
   */
  addIdentity(identity: Identity): EndpointPolicyDiff[] {
    if (identity.id === 0 || classifyIdentity(identity.id) === "any") {
      throw new RangeError(`Cannot add identity ${String(identity.id)}: 0 means any identity`);
    }
    const labels = LabelSet.from(identity.labels);
    const known = this.#identities.get(identity.id);
    if (known !== undefined && known.labels.equals(labels)) return [];
    const out = new DiffCollector();
    if (known !== undefined) this.#identityChanged(known, false, out);
    const stored: Identity = Object.freeze({ ...identity, labels });
    this.#identities.set(identity.id, stored);
    this.#identityChanged(stored, true, out);
    return this.#emit(out.result());
  }

  /**
   * Removes an identity and the entries for it.
   *
   * @param id The identity number.
   * @returns The diffs (empty when the identity was unknown).
   */
  removeIdentity(id: number): EndpointPolicyDiff[] {
    const known = this.#identities.get(id);
    if (known === undefined) return [];
    const out = new DiffCollector();
    this.#identities.delete(id);
    this.#identityChanged(known, false, out);
    return this.#emit(out.result());
  }

  #identityChanged(identity: Identity, added: boolean, out: DiffCollector): void {
    const affected = new Map<EndpointState, [boolean, boolean]>();
    for (const ps of this.#peers.values()) {
      if (ps.peer.any) continue;
      if (added ? !ps.peer.matches(identity) : !ps.ids.has(identity.id)) continue;
      if (added) ps.ids.add(identity.id);
      else ps.ids.delete(identity.id);
      for (const rule of ps.users) {
        for (const ss of rule.sections) {
          if (!ss.peers.includes(ps)) continue;
          for (const ep of rule.endpoints) {
            let dirs = affected.get(ep);
            if (dirs === undefined) affected.set(ep, (dirs = [false, false]));
            dirs[ss.section.egress ? 1 : 0] = true;
          }
        }
      }
    }
    const only = new Set([identity.id]);
    for (const [ep, dirs] of affected) {
      if (dirs[0]) this.#recompute(ep, false, only, out);
      if (dirs[1]) this.#recompute(ep, true, only, out);
    }
  }

  /**
   * Looks up a known identity.
   *
   * @param id The identity number.
   * @returns The identity, or `undefined`.
   */
  identity(id: number): Identity | undefined {
    return this.#identities.get(id);
  }

  // --- rules ----------------------------------------------------------------

  /**
   * The rules in force, in order.
   *
   * @returns The rules as given.
   */
  rules(): PolicyRule[] {
    return this.#rules.map((r) => r.compiled.rule);
  }

  /**
   * Every CIDR the rules name (`from/toCIDR`, `cidr` and `except` of the
   * CIDR sets), canonical and sorted: the prefixes that need CIDR
   * identities (and ipcache entries) for the rules to match them.
   *
   * @returns The prefixes.
   */
  referencedCidrs(): string[] {
    const all = new Set<string>();
    for (const r of this.#rules) for (const c of r.compiled.cidrs) all.add(c);
    return [...all].sort();
  }

  /**
   * Names the rule section behind an entry's `ruleCookie`.
   *
   * @param cookie The cookie.
   * @returns The rule and section, or `undefined` for an unknown cookie.
   */
  ruleOfCookie(cookie: number): PolicyRuleRef | undefined {
    return this.#cookies.get(cookie);
  }

  /**
   * Replaces the whole rule set. The set is validated first; on any
   * problem nothing changes.
   *
   * @param rules The new rules.
   * @returns The diffs.
   * @throws {PolicyValidationError} With every problem of the set, naming rule and field.
   */
  setRules(rules: readonly PolicyRule[]): EndpointPolicyDiff[] {
    const compiled = checkRules(rules, "set rules");
    const out = new DiffCollector();
    const old = this.#rules;
    this.#rules = [];
    this.#nextIndex = 0;
    const removed = old.map((r) => this.#uninstall(r));
    const added = compiled.map((c) => this.#install(c));
    this.#nextIndex = rules.length;
    this.#ruleChanged([...removed, ...added], out);
    return this.#emit(out.result());
  }

  /**
   * Adds a rule, replacing the rule with the same name if there is one.
   *
   * @param rule The rule.
   * @returns The diffs.
   * @throws {PolicyValidationError} When the rule has problems; nothing changes.
   */
  addRule(rule: PolicyRule): EndpointPolicyDiff[] {
    const name = typeof rule === "object" && rule !== null && typeof rule.name === "string" ? rule.name : undefined;
    const existing = name === undefined ? undefined : this.#rules.find((r) => r.compiled.rule.name === name);
    const [compiled] = checkRules(
      [rule],
      name === undefined ? "add rule" : `add rule ${JSON.stringify(name)}`,
      this.#nextIndex,
    );
    if (compiled === undefined) return [];
    if (name === undefined) this.#nextIndex++;
    const out = new DiffCollector();
    const changed: RuleState[] = [];
    if (existing !== undefined) {
      this.#rules = this.#rules.filter((r) => r !== existing);
      changed.push(this.#uninstall(existing));
    }
    changed.push(this.#install(compiled));
    this.#ruleChanged(changed, out);
    return this.#emit(out.result());
  }

  /**
   * Deletes the rule with a name.
   *
   * @param name The rule's name.
   * @returns The diffs.
   * @throws {RangeError} When no rule has the name.
   */
  deleteRule(name: string): EndpointPolicyDiff[] {
    const existing = this.#rules.find((r) => r.compiled.rule.name === name);
    if (existing === undefined)
      throw new RangeError(`Cannot delete rule ${JSON.stringify(name)}: no rule has that name`);
    this.#rules = this.#rules.filter((r) => r !== existing);
    const out = new DiffCollector();
    this.#ruleChanged([this.#uninstall(existing)], out);
    return this.#emit(out.result());
  }

  #peerState(peer: Peer): PeerState {
    let ps = this.#peers.get(peer.key);
    if (ps === undefined) {
      const ids = new Set<number>();
      if (!peer.any) for (const identity of this.#identities.values()) if (peer.matches(identity)) ids.add(identity.id);
      ps = { peer, ids, users: new Set() };
      this.#peers.set(peer.key, ps);
    }
    return ps;
  }

  #install(compiled: CompiledRule): RuleState {
    const sections: SectionState[] = compiled.sections.map((section) => {
      const cookie = ++this.#cookieSeq;
      this.#cookies.set(cookie, { rule: compiled.ref, field: section.field, deny: section.deny, cookie });
      return { section, cookie, peers: section.peers.map((p) => this.#peerState(p)) };
    });
    const state: RuleState = { seq: ++this.#ruleSeq, compiled, sections, endpoints: new Set() };
    for (const ss of sections) for (const ps of ss.peers) ps.users.add(state);
    for (const ep of this.#endpoints.values()) {
      if (compiled.endpointSelector.matches(ep.labels)) {
        state.endpoints.add(ep);
        ep.rules.add(state);
      }
    }
    this.#rules.push(state);
    return state;
  }

  /** Detaches a rule from endpoints and peers; its endpoints stay in `endpoints` for the recompute. */
  #uninstall(state: RuleState): RuleState {
    for (const ep of state.endpoints) ep.rules.delete(state);
    for (const ss of state.sections) {
      this.#cookies.delete(ss.cookie);
      for (const ps of ss.peers) {
        ps.users.delete(state);
        if (ps.users.size === 0) this.#peers.delete(ps.peer.key);
      }
    }
    return state;
  }

  /** Recomputes, on the endpoints the rules select(ed), the identities their peers select. */
  #ruleChanged(rules: readonly RuleState[], out: DiffCollector): void {
    const affected = new Map<EndpointState, [Set<number>, Set<number>]>();
    for (const rule of rules) {
      for (const ep of rule.endpoints) {
        let sets = affected.get(ep);
        if (sets === undefined) affected.set(ep, (sets = [new Set(), new Set()]));
        for (const ss of rule.sections) {
          const set = sets[ss.section.egress ? 1 : 0];
          for (const ps of ss.peers) {
            if (ps.peer.any) set.add(0);
            else for (const id of ps.ids) set.add(id);
          }
        }
      }
    }
    for (const [ep, [ingress, egress]] of affected) {
      out.touch(ep);
      this.#updateEnforcement(ep);
      if (ingress.size > 0) this.#recompute(ep, false, ingress, out);
      if (egress.size > 0) this.#recompute(ep, true, egress, out);
    }
  }

  #updateEnforcement(ep: EndpointState): void {
    let ingress = false;
    let egress = false;
    for (const r of ep.rules) {
      ingress ||= r.compiled.enforcesIngress;
      egress ||= r.compiled.enforcesEgress;
    }
    ep.enforced[0] = ingress;
    ep.enforced[1] = egress;
  }

  // --- endpoints ------------------------------------------------------------

  /**
   * Adds or updates an endpoint and resolves its policy.
   *
   * @param endpoint The endpoint.
   * @returns The diffs (of this endpoint only).
   * @throws {RangeError} When the id is not 0-65535, or the labels are omitted and the identity is unknown.
   * @throws {InvalidLabelError} When a label is malformed.
   */
  upsertEndpoint(endpoint: PolicyEndpoint): EndpointPolicyDiff[] {
    const id = checkEndpointId(endpoint.id, `add endpoint ${String(endpoint.id)}`);
    let labels: LabelSet;
    if (endpoint.labels !== undefined) labels = LabelSet.from(endpoint.labels);
    else {
      const identity = this.#identities.get(endpoint.identity);
      if (identity === undefined) {
        throw new RangeError(
          `Cannot add endpoint ${id}: identity ${String(endpoint.identity)} is unknown and no labels were given`,
        );
      }
      labels = identity.labels;
    }
    const out = new DiffCollector();
    let ep = this.#endpoints.get(id);
    if (ep !== undefined) {
      ep.identity = endpoint.identity;
      if (ep.labels.equals(labels)) return [];
      out.touch(ep);
      for (const r of ep.rules) r.endpoints.delete(ep);
      ep.rules.clear();
      ep.labels = labels;
    } else {
      ep = {
        id,
        identity: endpoint.identity,
        labels,
        rules: new Set(),
        enforced: [false, false],
        entries: [new Map<number, Map<number, PolicyEntry>>(), new Map<number, Map<number, PolicyEntry>>()],
      };
      this.#endpoints.set(id, ep);
      out.touch(ep);
    }
    for (const r of this.#rules) {
      if (r.compiled.endpointSelector.matches(labels)) {
        r.endpoints.add(ep);
        ep.rules.add(r);
      }
    }
    this.#updateEnforcement(ep);
    this.#recompute(ep, false, undefined, out);
    this.#recompute(ep, true, undefined, out);
    return this.#emit(out.result());
  }

  /**
   * Removes an endpoint; its diff lists every entry it had.
   *
   * @param id The endpoint id.
   * @returns The diffs (empty when the endpoint was unknown).
   */
  removeEndpoint(id: number): EndpointPolicyDiff[] {
    const ep = this.#endpoints.get(id);
    if (ep === undefined) return [];
    const out = new DiffCollector();
    const d = out.touch(ep);
    for (const r of ep.rules) r.endpoints.delete(ep);
    for (const dir of ep.entries) {
      for (const m of dir.values()) for (const e of m.values()) d.removed.set(entryKeyText(e.identity, e.egress, e), e);
    }
    this.#endpoints.delete(id);
    return this.#emit(out.result(new Set([id])));
  }

  /**
   * The resolved policy of an endpoint, as the engine holds it.
   *
   * @param id The endpoint id.
   * @returns The policy, or `undefined` for an unknown endpoint.
   */
  endpointPolicy(id: number): EndpointPolicy | undefined {
    const ep = this.#endpoints.get(id);
    if (ep === undefined) return undefined;
    const dir = (i: 0 | 1): DirectionPolicy => {
      const entries: PolicyEntry[] = [];
      for (const m of ep.entries[i].values()) entries.push(...m.values());
      return { enforced: ep.enforced[i], entries: entries.sort(compareEntries) };
    };
    return { endpointId: ep.id, identity: ep.identity, ingress: dir(0), egress: dir(1) };
  }

  /**
   * The ids of the endpoints, sorted.
   *
   * @returns The ids.
   */
  endpointIds(): number[] {
    return [...this.#endpoints.keys()].sort((a, b) => a - b);
  }

  /**
   * Resolves every endpoint's policy from scratch, without the caches and
   * without changing the engine: what the incremental state must equal.
   *
   * @returns The policies by endpoint id.
   */
  resolveAll(): Map<number, EndpointPolicy> {
    const identities = [...this.#identities.values()];
    const peerIds = new Map<string, Set<number>>();
    const idsOf = (p: Peer): Set<number> => {
      let ids = peerIds.get(p.key);
      if (ids === undefined) {
        ids = new Set();
        for (const identity of identities) if (p.matches(identity)) ids.add(identity.id);
        peerIds.set(p.key, ids);
      }
      return ids;
    };
    const out = new Map<number, EndpointPolicy>();
    for (const ep of [...this.#endpoints.values()].sort((a, b) => a.id - b.id)) {
      const rules = this.#rules.filter((r) => r.compiled.endpointSelector.matches(ep.labels));
      const dir = (egress: boolean): DirectionPolicy => {
        const acc: DirEntries = new Map();
        for (const r of rules) {
          for (const ss of r.sections) {
            if (ss.section.egress !== egress) continue;
            for (const p of ss.section.peers) {
              const targets = p.any ? [0] : idsOf(p);
              for (const id of targets) {
                let m = acc.get(id);
                if (m === undefined) acc.set(id, (m = new Map<number, PolicyEntry>()));
                for (const l of ss.section.l4) contribute(m, id, egress, l, ss.section.deny, ss.cookie);
              }
            }
          }
        }
        const entries: PolicyEntry[] = [];
        for (const m of acc.values()) entries.push(...finish(m).values());
        const enforced = rules.some((r) => (egress ? r.compiled.enforcesEgress : r.compiled.enforcesIngress));
        return { enforced, entries: entries.sort(compareEntries) };
      };
      out.set(ep.id, { endpointId: ep.id, identity: ep.identity, ingress: dir(false), egress: dir(true) });
    }
    return out;
  }

  /**
   * Recomputes one endpoint direction, for some identities or all, and records the diff.
   *
   * @param ep The endpoint.
   * @param egress The direction.
   * @param only The identities to recompute; all when undefined.
   * @param out The diff collector.
   */
  #recompute(ep: EndpointState, egress: boolean, only: ReadonlySet<number> | undefined, out: DiffCollector): void {
    const acc: DirEntries = new Map();
    const add = (id: number, ss: SectionState): void => {
      let m = acc.get(id);
      if (m === undefined) acc.set(id, (m = new Map<number, PolicyEntry>()));
      for (const l of ss.section.l4) contribute(m, id, egress, l, ss.section.deny, ss.cookie);
    };
    for (const r of ep.rules) {
      for (const ss of r.sections) {
        if (ss.section.egress !== egress) continue;
        for (const ps of ss.peers) {
          if (ps.peer.any) {
            if (only === undefined || only.has(0)) add(0, ss);
          } else if (only === undefined) {
            for (const id of ps.ids) add(id, ss);
          } else if (only.size < ps.ids.size) {
            for (const id of only) if (ps.ids.has(id)) add(id, ss);
          } else {
            for (const id of ps.ids) if (only.has(id)) add(id, ss);
          }
        }
      }
    }
    const current = ep.entries[egress ? 1 : 0];
    const d = out.touch(ep);
    const apply = (id: number, next: Map<number, PolicyEntry> | undefined): void => {
      const prev = current.get(id);
      if (prev !== undefined) {
        for (const [k, e] of prev) {
          if (next?.has(k) !== true) recordRemove(d, e);
        }
      }
      if (next !== undefined) {
        for (const [k, e] of next) {
          const old = prev?.get(k);
          if (old === undefined || !sameValue(old, e)) recordAdd(d, e);
        }
      }
      if (next === undefined || next.size === 0) current.delete(id);
      else current.set(id, next);
    };
    for (const [id, m] of acc) apply(id, finish(m));
    const stale = only ?? new Set(current.keys());
    for (const id of stale) if (!acc.has(id)) apply(id, undefined);
  }

  // --- explain --------------------------------------------------------------

  #resolveRef(ref: PolicyPeerRef, side: string): { identity: number; endpoint: EndpointState | undefined } {
    if ("endpoint" in ref) {
      const ep = this.#endpoints.get(ref.endpoint);
      if (ep === undefined) throw new RangeError(`Cannot explain: ${side} endpoint ${String(ref.endpoint)} is unknown`);
      return { identity: ep.identity, endpoint: ep };
    }
    if ("identity" in ref) return { identity: ref.identity, endpoint: undefined };
    const key = LabelSet.from(ref.labels).key;
    for (const identity of this.#identities.values()) {
      if (identity.labels.key === key) return { identity: identity.id, endpoint: undefined };
    }
    throw new RangeError(`Cannot explain: no identity has the ${side} labels ${JSON.stringify(key)}`);
  }

  #explainDir(
    ep: EndpointState,
    egress: boolean,
    remote: number,
    protocol: number,
    port: number,
  ): DirectionExplanation {
    const dir = ep.entries[egress ? 1 : 0];
    const entries = [...(dir.get(remote)?.values() ?? []), ...(remote === 0 ? [] : (dir.get(0)?.values() ?? []))];
    return explainDirection(entries, ep.id, egress, ep.enforced[egress ? 1 : 0], remote, protocol, port, (c) =>
      this.#cookies.get(c),
    );
  }

  /**
   * Explains the verdict for a flow, like `cilium policy trace`: the
   * source endpoint's egress (when the source is a local endpoint) and
   * the destination endpoint's ingress (when the destination is one),
   * each with the rule sections that allowed or denied it or the default
   * that applied. It reads the same entries the maps are written from.
   *
   * @param query The flow.
   * @returns The explanation.
   * @throws {RangeError} When an endpoint or labels are unknown, or the protocol number is out of range.
   * @throws {TypeError} When the protocol name is unknown or `ANY`.
   */
  explain(query: PolicyExplainQuery): PolicyExplanation {
    const protocol = protocolNumber(query.protocol);
    const port = query.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new RangeError(`Cannot explain: the port must be 0-65535, got ${String(port)}`);
    const from = this.#resolveRef(query.from, "source");
    const to = this.#resolveRef(query.to, "destination");
    const egress =
      from.endpoint === undefined ? undefined : this.#explainDir(from.endpoint, true, to.identity, protocol, port);
    const ingress =
      to.endpoint === undefined ? undefined : this.#explainDir(to.endpoint, false, from.identity, protocol, port);
    const verdict = egress?.verdict === "denied" || ingress?.verdict === "denied" ? "denied" : "allowed";
    return { verdict, egress, ingress };
  }
}

function recordRemove(d: { added: Map<string, PolicyEntry>; removed: Map<string, PolicyEntry> }, e: PolicyEntry): void {
  const k = entryKeyText(e.identity, e.egress, e);
  if (d.added.has(k)) d.added.delete(k);
  d.removed.set(k, e);
}

function recordAdd(d: { added: Map<string, PolicyEntry>; removed: Map<string, PolicyEntry> }, e: PolicyEntry): void {
  const k = entryKeyText(e.identity, e.egress, e);
  d.removed.delete(k);
  d.added.set(k, e);
}

/**
 * Creates a policy engine with no rules and no endpoints.
 *
 * @param options The allocator to follow.
 * @returns The engine.
 * @example Following an allocator
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, createPolicyEngine, type EndpointPolicyDiff } from "@dp/datapath";
 *
 * const allocator = createLocalIdentityAllocator();
 * using engine = createPolicyEngine({ allocator }); // `using` needs TypeScript or Node 24+
 * engine.upsertEndpoint({ id: 1, identity: 1, labels: ["reserved:host"] });
 * engine.setRules([{ endpointSelector: {}, egress: [{ toEndpoints: [{ matchLabels: { "k8s:app": "db" } }] }] }]);
 * const seen: EndpointPolicyDiff[] = [];
 * engine.subscribe((diffs) => seen.push(...diffs));
 * const db = await allocator.allocate(["k8s:app=db"]);
 * assert.deepEqual(seen[0]?.added.map((e) => [e.identity, e.egress]), [[db.id, true]]);
 * ```
 */
export function createPolicyEngine(options: PolicyEngineOptions = {}): PolicyEngine {
  return new PolicyEngine(options);
}
