// Conveniences for Greenroom plugins written in JavaScript
// (componentize-js), the same the Rust SDK gives: a card builder, facts,
// the plugin errors, and HTTP with secrets the host fills in.
//
// `greenroom plugin new --lang js` puts this file beside `app.js`; copy it
// into any plugin folder built with componentize-js and import it with a
// relative path. It imports nothing of the host, so it works with any
// world: pass it what it needs (the response of `fetch`).
//
//   import { CardBuilder, notApplicable, annotation } from "./greenroom-plugin.js";
//
//   export const cards = {
//     cards(entity) {
//       const slug = annotation(entity, "example.com/slug");
//       if (!slug) throw notApplicable();
//       return [new CardBuilder("status", "Status").field("Slug", slug).build()];
//     },
//   };

/** A card, node by node: `new CardBuilder(id, title).heading("…").build()`. */
export class CardBuilder {
  constructor(id, title) {
    this.card = { id, title, nodes: [] };
  }
  add(tag, val) {
    this.card.nodes.push(val === undefined ? { tag } : { tag, val });
    return this;
  }
  heading(text) {
    return this.add("heading", text);
  }
  text(text) {
    return this.add("text", text);
  }
  /** CommonMark, rendered and sanitised by the host. */
  markdown(markdown) {
    return this.add("markdown", markdown);
  }
  /** `tone`: "neutral", "info", "good", "warning", "critical", or none. */
  field(label, value, tone) {
    return this.add("field", { label, value: String(value), tone });
  }
  link(label, href) {
    return this.add("link", { label, href });
  }
  badge(label, tone = "neutral") {
    return this.add("badge", { label, tone });
  }
  progress(value, max, label) {
    return this.add("progress", { value, max, label });
  }
  sparkline(values) {
    return this.add("sparkline", Float64Array.from(values));
  }
  /** Rows of cells (`cell.text`, `cell.link`, `cell.badge`; a string is text). */
  table(columns, rows) {
    const cells = rows.map((row) => row.map((c) => (typeof c === "string" ? cell.text(c) : c)));
    return this.add("table", { columns, rows: cells });
  }
  code(text) {
    return this.add("code", text);
  }
  divider() {
    return this.add("divider");
  }
  build() {
    return this.card;
  }
}

/** Cells of a table. */
export const cell = {
  text: (text) => ({ tag: "text", val: String(text) }),
  link: (label, href) => ({ tag: "link", val: { label, href } }),
  badge: (label, tone = "neutral") => ({ tag: "badge", val: { label, tone } }),
};

/** A fact; its type follows the value: boolean a flag, number a number,
 * anything else text. */
export function fact(name, value, url) {
  const v =
    typeof value === "boolean"
      ? { tag: "flag", val: value }
      : typeof value === "number"
        ? { tag: "number", val: value }
        : { tag: "text", val: String(value) };
  return { name, value: v, url };
}

// Errors: `throw notApplicable()` and so on, from any export.

/** Nothing to say about this entity: no card, nothing logged. */
export const notApplicable = () => ({ tag: "not-applicable" });
/** The service the plugin reads failed; the card shows `message`. */
export const upstream = (message) => ({ tag: "upstream", val: message });
/** A setting or grant is missing; say which. */
export const configError = (message) => ({ tag: "config", val: message });
/** A bug in the plugin. */
export const internal = (message) => ({ tag: "internal", val: message });

// The entity.

/** The whole entity (metadata, spec, relations) as an object. */
export const entityValue = (entity) => JSON.parse(entity.json);
export const annotation = (entity, key) => entityValue(entity).metadata?.annotations?.[key];

// HTTP: with `import { fetch } from "greenroom:plugin/http@0.2.0"`.

/** A header carrying secret `secret`, e.g. `Authorization: Bearer
 * {{secret:TOKEN}}`: the host fills in the value, only for the origins the
 * secret is granted for, so it never enters the plugin. */
export function secretHeader(secret, name = "Authorization", scheme = "Bearer") {
  const value = scheme ? `${scheme} {{secret:${secret}}}` : `{{secret:${secret}}}`;
  return { name, value };
}

/** Calls `fetch(request)` (the host's) and answers the JSON body. A
 * refused request, a failed transport or a status other than 2xx throws
 * `upstream(…)` naming `what`; 401 and 403 throw `configError(…)`. */
export function fetchJson(fetch, request, what = "the upstream") {
  let response;
  try {
    response = fetch({ method: "GET", headers: [], body: undefined, ...request });
  } catch (e) {
    const error = e?.payload ?? e;
    throw upstream(`${what}: ${error?.tag ?? "error"}${error?.val ? `: ${error.val}` : ""}`);
  }
  const body = new TextDecoder().decode(response.body);
  if (response.status === 401 || response.status === 403) {
    throw configError(`${what} refused the credentials (${response.status}); check the secret and grant`);
  }
  if (response.status < 200 || response.status >= 300) {
    throw upstream(`${what} answered ${response.status}: ${body.slice(0, 200)}`);
  }
  try {
    return JSON.parse(body);
  } catch (e) {
    throw upstream(`${what} answered something that is not JSON: ${e}`);
  }
}
