// The fake's IMDSv2: session tokens from `PUT /latest/api/token`, and the
// `/latest/meta-data/` tree of one instance, built from the model on every
// request so it follows attachments and address changes.

import type { Ec2Model } from "./_ec2_model.ts";

/** The largest token lifetime IMDS accepts, in seconds (6 hours). */
const MAX_TOKEN_TTL = 21600;
const META_DATA = "/latest/meta-data/";

/** An IMDS answer. */
export interface ImdsResponse {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A pending injected failure of a metadata path. */
interface ImdsFault {
  readonly path: string;
  readonly status: number;
  times: number;
}

/** The leaf values of an instance's metadata, by path under `meta-data/`. */
function leaves(model: Ec2Model, instanceId: string): Map<string, string> {
  const out = new Map<string, string>();
  const instance = model.instanceRecords().find((i) => i.id === instanceId);
  if (instance === undefined) return out;
  const enis = model.attachedTo(instanceId);
  const primary = enis.find((e) => e.attachment?.deviceIndex === 0);
  const vpc = model.vpc();
  out.set("ami-id", "ami-00000000000000001");
  out.set("instance-id", instance.id);
  out.set("instance-type", instance.type);
  out.set("placement/availability-zone", instance.availabilityZone);
  out.set("placement/region", model.region);
  if (primary !== undefined) {
    out.set("mac", primary.mac);
    out.set("local-ipv4", primary.ips[0] ?? "");
  }
  for (const e of enis) {
    const subnet = model.subnetRecords().find((s) => s.id === e.subnetId);
    const base = `network/interfaces/macs/${e.mac}/`;
    out.set(`${base}device-number`, String(e.attachment?.deviceIndex ?? 0));
    out.set(`${base}interface-id`, e.id);
    out.set(`${base}local-ipv4s`, e.ips.join("\n"));
    out.set(`${base}mac`, e.mac);
    out.set(`${base}owner-id`, "123456789012");
    out.set(`${base}security-group-ids`, e.groups.join("\n"));
    out.set(`${base}security-groups`, e.groups.map((g) => model.groupName(g)).join("\n"));
    out.set(`${base}subnet-id`, e.subnetId);
    if (subnet !== undefined) out.set(`${base}subnet-ipv4-cidr-block`, subnet.cidr);
    out.set(`${base}vpc-id`, vpc.id);
    out.set(`${base}vpc-ipv4-cidr-block`, vpc.cidrs[0] ?? "");
    out.set(`${base}vpc-ipv4-cidr-blocks`, vpc.cidrs.join("\n"));
  }
  return out;
}

/** A directory listing: the immediate children of `dir`, subdirectories with a trailing `/`. */
function listing(all: Map<string, string>, dir: string): string | undefined {
  const children = new Set<string>();
  for (const path of all.keys()) {
    if (!path.startsWith(dir)) continue;
    const rest = path.slice(dir.length);
    const slash = rest.indexOf("/");
    children.add(slash < 0 ? rest : rest.slice(0, slash + 1));
  }
  return children.size === 0 ? undefined : [...children].sort().join("\n");
}

/** IMDSv2 for one instance of the model. */
export class FakeImds {
  readonly #model: Ec2Model;
  readonly #tokens = new Map<string, number>();
  readonly #faults: ImdsFault[] = [];
  #nextToken = 0;
  /** The instance the metadata describes. */
  instanceId: string;

  constructor(model: Ec2Model, instanceId: string) {
    this.#model = model;
    this.instanceId = instanceId;
  }

  /** Makes the next `times` GETs of `path` (under `meta-data/`) answer `status`. */
  failNext(path: string, status: number, times: number): void {
    this.#faults.push({ path: path.replace(/^\/+/, ""), status, times });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Answers one request. */
  handle(method: string, url: string, header: (name: string) => string | undefined): ImdsResponse {
    const path = new URL(url, "http://imds").pathname;
    if (path === "/latest/api/token") {
      if (method !== "PUT") return { status: 405, body: "" };
      const ttlText = header("x-aws-ec2-metadata-token-ttl-seconds");
      const ttl = ttlText === undefined || !/^\d+$/.test(ttlText) ? NaN : Number(ttlText);
      if (!(ttl >= 1 && ttl <= MAX_TOKEN_TTL)) return { status: 400, body: "" };
      const token = `fake-imds-token-${++this.#nextToken}-${Math.random().toString(36).slice(2)}`;
      this.#tokens.set(token, Date.now() + ttl * 1000);
      return { status: 200, body: token, headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) } };
    }
    if (method !== "GET" && method !== "HEAD") return { status: 405, body: "" };
    const token = header("x-aws-ec2-metadata-token");
    const expires = token === undefined ? undefined : this.#tokens.get(token);
    if (expires === undefined || expires <= Date.now()) return { status: 401, body: "" };
    if (!path.startsWith(META_DATA) && path !== META_DATA.slice(0, -1)) return { status: 404, body: "" };
    const rel = path.slice(META_DATA.length);
    const fault = this.#faults.find((f) => f.path === rel && f.times > 0);
    if (fault !== undefined) {
      fault.times--;
      return { status: fault.status, body: "" };
    }
    const all = leaves(this.#model, this.instanceId);
    const leaf = all.get(rel);
    if (leaf !== undefined) return { status: 200, body: leaf };
    const dir = rel === "" || rel.endsWith("/") ? rel : `${rel}/`;
    const list = listing(all, dir);
    return list === undefined ? { status: 404, body: "" } : { status: 200, body: list };
  }
}
