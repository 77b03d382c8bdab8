// Runtimes: the Python, Node.js and Go versions a repository pins, read
// from the files beside the entity's catalog-info.yaml, as a card and as
// facts for migration campaigns ("who still runs Python 2").
//
// Each exported interface is an exported object. A failed import call
// throws (its `payload` is the error text); an export fails by throwing
// { tag: "not-applicable" }, { tag: "config", val: "what to set" }, ...
import { readFile } from "greenroom:plugin/source@0.2.0";
import { get } from "greenroom:plugin/config@0.2.0";

// Where each runtime's version is pinned, in the order they are tried:
// [file, how to find the version in its text].
const PINS = {
  python: [
    [".python-version", (t) => t.split("\n")[0].trim()],
    ["runtime.txt", (t) => t.match(/^python-(\S+)/m)?.[1]],
    ["pyproject.toml", (t) => t.match(/^requires-python\s*=\s*["'][^0-9]*([0-9][0-9.]*)/m)?.[1]],
    ["Dockerfile", (t) => t.match(/^FROM\s+(?:\S+\/)?python:([0-9][0-9.]*)/im)?.[1]],
  ],
  node: [
    [".nvmrc", (t) => t.split("\n")[0].trim().replace(/^v/, "")],
    ["package.json", (t) => JSON.parse(t).engines?.node?.match(/[0-9][0-9.]*/)?.[0]],
    ["Dockerfile", (t) => t.match(/^FROM\s+(?:\S+\/)?node:([0-9][0-9.]*)/im)?.[1]],
  ],
  go: [["go.mod", (t) => t.match(/^go\s+([0-9][0-9.]*)/m)?.[1]]],
};

const NAMES = { python: "Python", node: "Node.js", go: "Go" };

// The oldest version still supported upstream (as of December 2026),
// unless a setting says otherwise: `python_min = "3.11"`.
const SUPPORTED_FROM = { python: "3.10", node: "22", go: "1.26" };

// "3.10.4" -> [3, 10, 4]; compares numerically, so 3.10 is after 3.9.
const parts = (v) => v.split(".").map((n) => parseInt(n, 10) || 0);
const atLeast = (version, min) => {
  const [a, b] = [parts(version), parts(min)];
  for (let i = 0; i < b.length; i++) {
    if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i];
  }
  return true;
};

// Every runtime the files pin: { runtime, version, file, supported }.
function pinned(entity) {
  const found = [];
  for (const [runtime, pins] of Object.entries(PINS)) {
    for (const [file, find] of pins) {
      let text;
      try {
        text = readFile(entity.entityRef, file);
      } catch {
        continue; // no such file beside the entity
      }
      let version;
      try {
        version = find(text);
      } catch {
        continue; // a file that does not parse pins nothing
      }
      if (version) {
        const min = get(`${runtime}_min`) ?? SUPPORTED_FROM[runtime];
        found.push({ runtime, version, file, supported: atLeast(version, min), min });
        break;
      }
    }
  }
  return found;
}

export const cards = {
  cards(entity) {
    const found = pinned(entity);
    if (found.length === 0) throw { tag: "not-applicable" };
    const rows = found.map((p) => [
      { tag: "text", val: NAMES[p.runtime] },
      { tag: "text", val: p.version },
      { tag: "text", val: p.file },
      p.supported
        ? { tag: "badge", val: { label: "supported", tone: "good" } }
        : { tag: "badge", val: { label: `end of life (< ${p.min})`, tone: "critical" } },
    ]);
    return [
      {
        id: "runtimes",
        title: "Runtimes",
        nodes: [{ tag: "table", val: { columns: ["Runtime", "Version", "Pinned in", "Support"], rows } }],
      },
    ];
  },
};

export const facts = {
  // runtime.<name>: the major version as a number (2 for Python 2.7), and
  // runtime.<name>_version: the version as written.
  facts(entity) {
    return pinned(entity).flatMap((p) => [
      { name: `runtime.${p.runtime}`, value: { tag: "number", val: parts(p.version)[0] } },
      { name: `runtime.${p.runtime}_version`, value: { tag: "text", val: p.version } },
    ]);
  },
};
