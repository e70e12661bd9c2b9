// Reading EC2 Query API parameters (`Action=…&Version=…&Filter.1.Name=…`)
// as @aws-sdk/client-ec2 serialises them: lists are flattened into
// `Name.N` keys numbered from 1, structures into `Name.Field` keys.

import { FakeEc2Fault } from "./_fault.ts";

/** The decoded form parameters of one request. */
export class QueryParams {
  readonly #params: ReadonlyMap<string, string>;

  constructor(body: string) {
    this.#params = new Map(new URLSearchParams(body));
  }

  /** Every parameter, for the call log. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.#params);
  }

  /** An optional string parameter. */
  get(name: string): string | undefined {
    return this.#params.get(name);
  }

  /** A required string parameter: MissingParameter when absent. */
  required(name: string): string {
    const v = this.#params.get(name);
    if (v === undefined || v === "") {
      throw new FakeEc2Fault("MissingParameter", `The request must contain the parameter ${name}`);
    }
    return v;
  }

  /** An optional non-negative integer parameter. */
  int(name: string): number | undefined {
    const v = this.#params.get(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v))
      throw new FakeEc2Fault("InvalidParameterValue", `Value (${v}) for parameter ${name} is invalid`);
    return Number(v);
  }

  /** An optional boolean parameter. */
  bool(name: string): boolean | undefined {
    const v = this.#params.get(name);
    if (v === undefined) return undefined;
    if (v !== "true" && v !== "false") {
      throw new FakeEc2Fault("InvalidParameterValue", `Value (${v}) for parameter ${name} is invalid`);
    }
    return v === "true";
  }

  /** A flattened list `prefix.1`, `prefix.2`, … of strings. */
  list(prefix: string): string[] {
    const out: string[] = [];
    for (let i = 1; ; i++) {
      const v = this.#params.get(`${prefix}.${i}`);
      if (v === undefined) return out;
      out.push(v);
    }
  }

  /** The number of entries of a flattened list of structures (`prefix.N.*`). */
  count(prefix: string): number {
    let n = 0;
    for (const key of this.#params.keys()) {
      if (!key.startsWith(`${prefix}.`)) continue;
      const index = Number(key.slice(prefix.length + 1).split(".")[0]);
      if (Number.isInteger(index) && index > n) n = index;
    }
    return n;
  }

  /** `Filter.N.Name` / `Filter.N.Value.M`, by name. */
  filters(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (let i = 1; i <= this.count("Filter"); i++) {
      const name = this.required(`Filter.${i}.Name`);
      out.set(name, [...(out.get(name) ?? []), ...this.list(`Filter.${i}.Value`)]);
    }
    return out;
  }

  /** `TagSpecification.N.ResourceType` / `.Tag.M.Key|Value` for one resource type. */
  tagSpecifications(resourceType: string): Record<string, string> {
    const tags: Record<string, string> = {};
    for (let i = 1; i <= this.count("TagSpecification"); i++) {
      const type = this.required(`TagSpecification.${i}.ResourceType`);
      if (type !== resourceType) {
        throw new FakeEc2Fault(
          "InvalidParameterValue",
          `'${type}' is not a valid taggable resource type for this operation.`,
        );
      }
      for (let j = 1; j <= this.count(`TagSpecification.${i}.Tag`); j++) {
        tags[this.required(`TagSpecification.${i}.Tag.${j}.Key`)] =
          this.get(`TagSpecification.${i}.Tag.${j}.Value`) ?? "";
      }
    }
    return tags;
  }
}
