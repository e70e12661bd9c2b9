// The XML documents EC2 answers with: `<ActionResponse xmlns=…>` holding a
// `requestId` and the result's fields (lists as `<fooSet><item>…</item>`),
// and the `<Response><Errors>…` error document.

const EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/";

/** A field value: text, a nested element, or a list rendered as `<item>`s. */
export type XmlValue = string | number | boolean | Date | XmlFields | readonly XmlValue[] | undefined;

/** The fields of an element, in document order; `undefined` ones are left out. */
export interface XmlFields {
  readonly [name: string]: XmlValue;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function renderValue(value: XmlValue): string {
  if (value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v: XmlValue) => `<item>${renderValue(v)}</item>`).join("");
  if (typeof value === "object") return renderFields(value as XmlFields);
  return escapeXml(String(value));
}

function renderFields(fields: XmlFields): string {
  let out = "";
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += `<${name}>${renderValue(value)}</${name}>`;
  }
  return out;
}

/** A successful response document of an action. */
export function ec2ResponseXml(action: string, requestId: string, fields: XmlFields): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_XMLNS}">${renderFields({ requestId, ...fields })}</${action}Response>`;
}

/** An error document. */
export function ec2ErrorXml(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response>${renderFields({
    Errors: { Error: { Code: code, Message: message } },
    RequestID: requestId,
  })}</Response>`;
}
