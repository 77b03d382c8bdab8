//! The entity model: Backstage's envelope (`apiVersion`, `kind`, `metadata`,
//! `spec`), the rules each built-in kind follows, custom kinds validated by a
//! JSON Schema, and the relations derived from specs.
//!
//! **Invariant:** `catalog` does no IO. It receives parsed JSON values and
//! returns validated entities or field-level problems; reading files and URLs
//! is `ingest`'s job, storing them is `store`'s.

pub mod filter;
pub mod kinds;
pub mod path;
pub mod refs;
pub mod relations;

use serde_json::{Map, Value};

pub use kinds::{CustomKind, KindError, Kinds, SpecCheck};
pub use path::{FieldPath, PathSeg};
pub use refs::{DEFAULT_NAMESPACE, EntityRef, RefError};
pub use relations::{Relation, RelationSet};

/// One thing wrong with an entity, tied to the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: FieldPath,
    pub message: String,
}

impl Problem {
    fn new(field: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            field,
            message: message.into(),
        }
    }
}

/// An entity that passed validation, normalised (namespace filled in,
/// server-owned fields removed), with its derived relations.
#[derive(Debug, Clone)]
pub struct ValidEntity {
    pub entity_ref: EntityRef,
    pub value: Value,
    pub owner: Option<EntityRef>,
    pub relations: Vec<Relation>,
}

/// An entity that failed validation. `entity_ref` is known when kind and
/// name could be read, so that the last good version can stay served.
#[derive(Debug, Clone)]
pub struct InvalidEntity {
    pub entity_ref: Option<EntityRef>,
    pub problems: Vec<Problem>,
}

/// How a built-in kind's spec field refers to other entities.
struct RefField {
    field: &'static str,
    relation: &'static str,
    default_kind: Option<&'static str>,
    many: bool,
}

const fn one(
    field: &'static str,
    relation: &'static str,
    default_kind: Option<&'static str>,
) -> RefField {
    RefField {
        field,
        relation,
        default_kind,
        many: false,
    }
}

const fn many(
    field: &'static str,
    relation: &'static str,
    default_kind: Option<&'static str>,
) -> RefField {
    RefField {
        many: true,
        ..one(field, relation, default_kind)
    }
}

const OWNER: RefField = one("owner", "ownedBy", Some("group"));
const SYSTEM: RefField = one("system", "partOf", Some("system"));
const DEPENDS_ON: RefField = many("dependsOn", "dependsOn", None);
const DEPENDENCY_OF: RefField = many("dependencyOf", "dependencyOf", None);

/// The rules of one built-in kind.
struct KindRule {
    kind: &'static str,
    api_versions: &'static [&'static str],
    required: &'static [&'static str],
    owner_required: bool,
    refs: &'static [RefField],
}

const BACKSTAGE: &[&str] = &["backstage.io/v1alpha1", "backstage.io/v1beta1"];

const BUILT_IN: &[KindRule] = &[
    KindRule {
        kind: "Component",
        api_versions: BACKSTAGE,
        required: &["type", "lifecycle"],
        owner_required: true,
        refs: &[
            OWNER,
            SYSTEM,
            one("subcomponentOf", "partOf", Some("component")),
            many("providesApis", "providesApi", Some("api")),
            many("consumesApis", "consumesApi", Some("api")),
            DEPENDS_ON,
            DEPENDENCY_OF,
        ],
    },
    KindRule {
        kind: "API",
        api_versions: BACKSTAGE,
        // And `definition` or `remotes`: see `check_api_description`.
        required: &["type", "lifecycle"],
        owner_required: true,
        refs: &[OWNER, SYSTEM],
    },
    KindRule {
        kind: "Resource",
        api_versions: BACKSTAGE,
        required: &["type"],
        owner_required: true,
        refs: &[OWNER, SYSTEM, DEPENDS_ON, DEPENDENCY_OF],
    },
    KindRule {
        kind: "System",
        api_versions: BACKSTAGE,
        required: &[],
        owner_required: true,
        refs: &[OWNER, one("domain", "partOf", Some("domain"))],
    },
    KindRule {
        kind: "Domain",
        api_versions: BACKSTAGE,
        required: &[],
        owner_required: true,
        refs: &[OWNER, one("subdomainOf", "partOf", Some("domain"))],
    },
    KindRule {
        kind: "Group",
        api_versions: BACKSTAGE,
        required: &["type"],
        owner_required: false,
        refs: &[
            one("parent", "childOf", Some("group")),
            many("children", "parentOf", Some("group")),
            many("members", "hasMember", Some("user")),
        ],
    },
    KindRule {
        kind: "User",
        api_versions: BACKSTAGE,
        required: &[],
        owner_required: false,
        refs: &[many("memberOf", "memberOf", Some("group"))],
    },
    KindRule {
        kind: "Location",
        api_versions: BACKSTAGE,
        required: &[],
        owner_required: false,
        refs: &[],
    },
    KindRule {
        kind: "Campaign",
        api_versions: &["greenroom.dev/v1alpha1"],
        required: &[],
        owner_required: true,
        refs: &[OWNER],
    },
    KindRule {
        kind: "Scorecard",
        api_versions: &["greenroom.dev/v1alpha1"],
        required: &[],
        owner_required: true,
        refs: &[OWNER],
    },
    KindRule {
        kind: "Template",
        api_versions: &[
            "scaffolder.backstage.io/v1beta3",
            "backstage.io/v1beta2",
            "backstage.io/v1alpha1",
        ],
        required: &["type"],
        owner_required: false,
        refs: &[OWNER],
    },
];

/// The built-in kinds, spelled as Backstage spells them.
pub fn built_in_kinds() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|k| k.kind)
}

fn root() -> FieldPath {
    FieldPath::default()
}

impl Kinds {
    /// Validates one entity and derives its relations.
    pub fn validate(&self, mut value: Value) -> Result<ValidEntity, InvalidEntity> {
        let mut problems = Vec::new();
        let Some(obj) = value.as_object_mut() else {
            return Err(InvalidEntity {
                entity_ref: None,
                problems: vec![Problem::new(
                    root(),
                    "an entity must be a mapping with apiVersion, kind, metadata and spec",
                )],
            });
        };
        // Fields the server owns are never taken from input.
        obj.remove("relations");
        obj.remove("status");

        let kind = match obj.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
            Some(_) => {
                problems.push(Problem::new(
                    root().key("kind"),
                    "kind must be a non-empty string",
                ));
                None
            }
            None => {
                problems.push(Problem::new(root().key("kind"), "kind is required"));
                None
            }
        };
        let api_version = match obj.get("apiVersion") {
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => {
                problems.push(Problem::new(
                    root().key("apiVersion"),
                    "apiVersion must be a string",
                ));
                None
            }
            None => {
                problems.push(Problem::new(
                    root().key("apiVersion"),
                    "apiVersion is required, e.g. backstage.io/v1alpha1",
                ));
                None
            }
        };

        let (name, namespace) = validate_metadata(obj, &mut problems);
        let entity_ref = match (&kind, &name) {
            (Some(k), Some(n)) if refs::check_kind(k).is_ok() => {
                Some(EntityRef::new(k, &namespace, n))
            }
            _ => None,
        };

        let rule = kind
            .as_deref()
            .and_then(|k| BUILT_IN.iter().find(|r| r.kind.eq_ignore_ascii_case(k)));
        let custom = kind.as_deref().and_then(|k| self.get(k));
        let mut owner = None;
        let mut rels = RelationSet::default();

        if let Some(kind) = &kind {
            if rule.is_none() && custom.is_none() {
                problems.push(Problem::new(
                    root().key("kind"),
                    format!(
                        "unknown kind '{kind}'; built-in kinds are {}; declare custom kinds under [[catalog.kinds]] in greenroom.toml",
                        built_in_kinds().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if let Some(v) = &api_version {
                let allowed: Vec<&str> = match (rule, custom) {
                    (Some(r), _) => r.api_versions.to_vec(),
                    (None, Some(c)) => c.api_versions.iter().map(String::as_str).collect(),
                    _ => Vec::new(),
                };
                let valid_shape = v
                    .split_once('/')
                    .is_some_and(|(g, ver)| !g.is_empty() && !ver.is_empty());
                if (rule.is_some() || custom.is_some())
                    && !(allowed.iter().any(|a| a == v) || (allowed.is_empty() && valid_shape))
                {
                    problems.push(Problem::new(
                        root().key("apiVersion"),
                        format!(
                            "apiVersion '{v}' is not valid for kind {kind}; use {}",
                            allowed.join(" or ")
                        ),
                    ));
                }
            }
        }

        let spec = obj.get("spec");
        let spec_required = rule.is_some() || custom.is_some();
        let spec_obj = match spec {
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                problems.push(Problem::new(root().key("spec"), "spec must be a mapping"));
                None
            }
            None if spec_required => {
                problems.push(Problem::new(root().key("spec"), "spec is required"));
                None
            }
            None => None,
        };

        // Checked even when the name is bad, so that one pass reports every
        // problem; relations of an invalid entity are discarded anyway.
        let placeholder;
        let me = match (&entity_ref, &kind) {
            (Some(r), _) => Some(r),
            (None, Some(k)) => {
                placeholder = EntityRef::new(k, &namespace, "unnamed");
                Some(&placeholder)
            }
            (None, None) => None,
        };
        if let (Some(spec), Some(me)) = (spec_obj, me) {
            let spec_path = root().key("spec");
            let (required, owner_required, ref_fields): (&[&str], bool, &[RefField]) =
                match (rule, custom) {
                    (Some(r), _) => (r.required, r.owner_required, r.refs),
                    (None, Some(c)) => (
                        &[],
                        c.owner_required,
                        &[OWNER, SYSTEM, DEPENDS_ON, DEPENDENCY_OF],
                    ),
                    _ => (&[], false, &[]),
                };
            for &field in required {
                match spec.get(field) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    Some(_) => problems.push(Problem::new(
                        spec_path.clone().key(field),
                        format!("spec.{field} must be a non-empty string"),
                    )),
                    None => problems.push(Problem::new(
                        spec_path.clone().key(field),
                        format!("spec.{field} is required"),
                    )),
                }
            }
            if me.kind == "api" {
                check_api_description(spec, &spec_path, &mut problems);
            }
            if let Some(check) = self.spec_check(&me.kind) {
                for (field, message) in check(&Value::Object(spec.clone())) {
                    // `spec.targets[1]` → spec / targets / 1.
                    let mut path = root();
                    for part in field.split('.') {
                        match part.split_once('[') {
                            Some((key, index)) => {
                                path = path.key(key);
                                if let Ok(i) = index.trim_end_matches(']').parse() {
                                    path = path.index(i);
                                }
                            }
                            None => path = path.key(part),
                        }
                    }
                    problems.push(Problem::new(path, message));
                }
            }
            if owner_required && !spec.contains_key("owner") {
                problems.push(Problem::new(
                    spec_path.clone().key("owner"),
                    format!("spec.owner is required: every {} must have an owning team or user, e.g. `owner: team-payments`", me.kind),
                ));
            }
            for rf in ref_fields {
                let Some(v) = spec.get(rf.field) else {
                    continue;
                };
                let path = spec_path.clone().key(rf.field);
                let texts: Vec<(FieldPath, &Value)> = if rf.many {
                    match v {
                        Value::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (path.clone().index(i), v))
                            .collect(),
                        _ => {
                            problems.push(Problem::new(
                                path,
                                format!("spec.{} must be a list of entity references", rf.field),
                            ));
                            continue;
                        }
                    }
                } else {
                    vec![(path, v)]
                };
                for (path, v) in texts {
                    let Value::String(text) = v else {
                        problems.push(Problem::new(
                            path,
                            format!("spec.{} must be an entity reference string", rf.field),
                        ));
                        continue;
                    };
                    match EntityRef::parse(text, rf.default_kind, &me.namespace) {
                        Ok(target) => {
                            if rf.field == "owner" {
                                owner = Some(target.clone());
                            }
                            rels.add(rf.relation, target);
                        }
                        Err(e) => problems.push(Problem::new(path, e.to_string())),
                    }
                }
            }
            if me.kind == "location" {
                validate_location_spec(spec, &spec_path, &mut problems);
            }
            if let Some(c) = custom {
                for message in c.schema_errors(&Value::Object(spec.clone())) {
                    problems.push(Problem::new(message.0, message.1));
                }
            }
        }

        match entity_ref {
            Some(entity_ref) if problems.is_empty() => Ok(ValidEntity {
                entity_ref,
                value,
                owner,
                relations: rels.relations,
            }),
            // Without problems the ref is always known; should a rule ever
            // let one through, say so rather than store a nameless entity.
            None if problems.is_empty() => Err(InvalidEntity {
                entity_ref: None,
                problems: vec![Problem::new(
                    root().key("kind"),
                    "the entity's kind and name could not be read",
                )],
            }),
            entity_ref => Err(InvalidEntity {
                entity_ref,
                problems,
            }),
        }
    }
}

fn validate_location_spec(
    spec: &Map<String, Value>,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) {
    let target = spec.get("target");
    let targets = spec.get("targets");
    if target.is_none() && targets.is_none() {
        problems.push(Problem::new(
            path.clone().key("target"),
            "a Location needs spec.target or spec.targets",
        ));
    }
    if let Some(t) = target
        && !t.is_string()
    {
        problems.push(Problem::new(
            path.clone().key("target"),
            "spec.target must be a string",
        ));
    }
    if let Some(t) = targets
        && !t.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        problems.push(Problem::new(
            path.clone().key("targets"),
            "spec.targets must be a list of strings",
        ));
    }
    if let Some(t) = spec.get("type")
        && !matches!(t.as_str(), Some("url" | "file"))
    {
        problems.push(Problem::new(
            path.clone().key("type"),
            "spec.type must be 'url' or 'file'",
        ));
    }
}

/// Validates `metadata` in place: fills in the namespace, drops
/// server-owned fields. Returns the name and namespace when readable.
fn validate_metadata(
    obj: &mut Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> (Option<String>, String) {
    let path = root().key("metadata");
    let Some(meta) = obj.get_mut("metadata") else {
        problems.push(Problem::new(
            path,
            "metadata is required, with at least metadata.name",
        ));
        return (None, DEFAULT_NAMESPACE.to_string());
    };
    let Some(meta) = meta.as_object_mut() else {
        problems.push(Problem::new(path, "metadata must be a mapping"));
        return (None, DEFAULT_NAMESPACE.to_string());
    };
    meta.remove("uid");
    meta.remove("etag");
    meta.remove("generation");

    let name = match meta.get("name") {
        Some(Value::String(n)) => match refs::check_name(n) {
            Ok(()) => Some(n.clone()),
            Err(reason) => {
                problems.push(Problem::new(
                    path.clone().key("name"),
                    format!("metadata.name {reason}"),
                ));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::new(
                path.clone().key("name"),
                "metadata.name must be a string",
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                path.clone().key("name"),
                "metadata.name is required",
            ));
            None
        }
    };
    let namespace = match meta.get("namespace") {
        None => {
            meta.insert("namespace".into(), Value::String(DEFAULT_NAMESPACE.into()));
            DEFAULT_NAMESPACE.to_string()
        }
        Some(Value::String(ns)) => {
            if let Err(reason) = refs::check_name(ns) {
                problems.push(Problem::new(
                    path.clone().key("namespace"),
                    format!("metadata.namespace {reason}"),
                ));
            }
            ns.clone()
        }
        Some(_) => {
            problems.push(Problem::new(
                path.clone().key("namespace"),
                "metadata.namespace must be a string",
            ));
            DEFAULT_NAMESPACE.to_string()
        }
    };
    for field in ["title", "description"] {
        if let Some(v) = meta.get(field)
            && !v.is_string()
        {
            problems.push(Problem::new(
                path.clone().key(field),
                format!("metadata.{field} must be a string"),
            ));
        }
    }
    for field in ["labels", "annotations"] {
        match meta.get(field) {
            None => {}
            Some(Value::Object(map)) => {
                for (key, v) in map {
                    let p = path.clone().key(field).key(key);
                    if let Err(reason) = check_qualified_key(key) {
                        problems.push(Problem::new(
                            p.clone(),
                            format!("metadata.{field} key '{key}' {reason}"),
                        ));
                    }
                    if !v.is_string() {
                        problems.push(Problem::new(
                            p,
                            format!("metadata.{field}.{key} must be a string (quote it)"),
                        ));
                    }
                }
            }
            Some(_) => problems.push(Problem::new(
                path.clone().key(field),
                format!("metadata.{field} must be a mapping of strings"),
            )),
        }
    }
    match meta.get("tags") {
        None => {}
        Some(Value::Array(tags)) => {
            for (i, tag) in tags.iter().enumerate() {
                let p = path.clone().key("tags").index(i);
                match tag.as_str() {
                    Some(t) if valid_tag(t) => {}
                    Some(t) => problems.push(Problem::new(
                        p,
                        format!("tag '{t}' is invalid: use 1–63 lower-case letters, digits, ':', '+', '#', joined by single '-'"),
                    )),
                    None => problems.push(Problem::new(p, "tags must be strings")),
                }
            }
        }
        Some(_) => problems.push(Problem::new(
            path.clone().key("tags"),
            "metadata.tags must be a list of strings",
        )),
    }
    match meta.get("links") {
        None => {}
        Some(Value::Array(links)) => {
            for (i, link) in links.iter().enumerate() {
                let p = path.clone().key("links").index(i);
                match link.as_object() {
                    Some(l) if l.get("url").is_some_and(Value::is_string) => {
                        for f in ["title", "icon", "type"] {
                            if l.get(f).is_some_and(|v| !v.is_string()) {
                                problems.push(Problem::new(
                                    p.clone().key(f),
                                    format!("link {f} must be a string"),
                                ));
                            }
                        }
                    }
                    _ => problems.push(Problem::new(
                        p,
                        "a link needs a url string (and optionally title, icon, type)",
                    )),
                }
            }
        }
        Some(_) => problems.push(Problem::new(
            path.clone().key("links"),
            "metadata.links must be a list",
        )),
    }
    (name, namespace)
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && t.split('-').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '+' | '#')
                })
        })
}

/// Checks a label or annotation key: `[prefix/]name`, where the prefix is a
/// DNS name of at most 253 characters and the name follows the name rule.
fn check_qualified_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "has an invalid prefix '{p}': it must be a DNS name"
            ));
        }
    }
    refs::check_name(name)
}

/// An API describes itself with `spec.definition` (an OpenAPI, AsyncAPI,
/// GraphQL… document) or, as Backstage's current model allows (an MCP
/// server, say), with `spec.remotes`: the endpoints it serves, each with a
/// `url` and optionally a `type`.
fn check_api_description(
    spec: &Map<String, Value>,
    spec_path: &FieldPath,
    problems: &mut Vec<Problem>,
) {
    match (spec.get("definition"), spec.get("remotes")) {
        (Some(Value::String(s)), _) if !s.is_empty() => {}
        (Some(_), _) => problems.push(Problem::new(
            spec_path.clone().key("definition"),
            "spec.definition must be a non-empty string",
        )),
        (None, None) => problems.push(Problem::new(
            spec_path.clone().key("definition"),
            "spec.definition is required, or spec.remotes: a list of the endpoints the API serves, each with a url",
        )),
        (None, Some(Value::Array(remotes))) if !remotes.is_empty() => {
            for (i, remote) in remotes.iter().enumerate() {
                let path = spec_path.clone().key("remotes").index(i);
                let url_ok = matches!(remote.get("url"), Some(Value::String(u)) if !u.is_empty());
                let type_ok = matches!(remote.get("type"), None | Some(Value::String(_)));
                if !remote.is_object() || !url_ok {
                    problems.push(Problem::new(
                        path,
                        format!("spec.remotes[{i}] must be a mapping with a non-empty url"),
                    ));
                } else if !type_ok {
                    problems.push(Problem::new(
                        path.key("type"),
                        format!("spec.remotes[{i}].type must be a string"),
                    ));
                }
            }
        }
        (None, Some(_)) => problems.push(Problem::new(
            spec_path.clone().key("remotes"),
            "spec.remotes must be a non-empty list of endpoints, each with a url",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component(spec: Value) -> Value {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "checkout"}, "spec": spec})
    }

    /// An entity's relations as `kind target` strings.
    fn relation_strings(e: &ValidEntity) -> Vec<String> {
        e.relations
            .iter()
            .map(|r| format!("{} {}", r.kind, r.target))
            .collect()
    }

    fn problems(v: Value) -> Vec<String> {
        match Kinds::default().validate(v) {
            Ok(_) => vec![],
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect(),
        }
    }

    #[test]
    fn valid_component_gets_namespace_and_relations() {
        let e = Kinds::default()
            .validate(component(json!({
                "type": "service", "lifecycle": "production", "owner": "team-payments",
                "system": "payments", "providesApis": ["checkout-api"], "consumesApis": ["api:fraud/score"],
                "dependsOn": ["resource:payments-db"]
            })))
            .unwrap();
        assert_eq!(e.entity_ref.to_string(), "component:default/checkout");
        assert_eq!(e.value["metadata"]["namespace"], "default");
        assert_eq!(
            e.owner.as_ref().unwrap().to_string(),
            "group:default/team-payments"
        );
        let rels = relation_strings(&e);
        assert_eq!(
            rels,
            vec![
                "ownedBy group:default/team-payments",
                "partOf system:default/payments",
                "providesApi api:default/checkout-api",
                "consumesApi api:fraud/score",
                "dependsOn resource:default/payments-db",
            ]
        );
    }

    #[test]
    fn an_api_has_a_definition_or_remotes() {
        let api = |spec: Value| {
            let mut spec = spec;
            spec["lifecycle"] = json!("production");
            spec["owner"] = json!("team-a");
            problems(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
                "metadata": {"name": "tools"}, "spec": spec}))
        };
        // Backstage's MCP server example: endpoints and no definition.
        assert_eq!(
            api(json!({"type": "mcp-server", "remotes": [
                {"type": "streamable-http", "url": "https://tools.example.com/mcp"},
                {"url": "https://tools.example.com/sse"}
            ]})),
            Vec::<String>::new()
        );
        assert_eq!(
            api(json!({"type": "openapi", "definition": "openapi: 3.0.0"})),
            Vec::<String>::new()
        );
        let none = api(json!({"type": "openapi"}));
        assert_eq!(none.len(), 1, "{none:?}");
        assert!(
            none[0].starts_with("spec.definition: spec.definition is required, or spec.remotes"),
            "{none:?}"
        );
        assert_eq!(
            api(
                json!({"type": "mcp-server", "remotes": [{"type": "sse"}, {"url": "u", "type": 3}]})
            ),
            vec![
                "spec.remotes[0]: spec.remotes[0] must be a mapping with a non-empty url",
                "spec.remotes[1].type: spec.remotes[1].type must be a string",
            ]
        );
        assert_eq!(
            api(json!({"type": "mcp-server", "remotes": []})),
            vec![
                "spec.remotes: spec.remotes must be a non-empty list of endpoints, each with a url"
            ]
        );
    }

    #[test]
    fn ownership_is_required() {
        let p = problems(component(
            json!({"type": "service", "lifecycle": "production"}),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("spec.owner: spec.owner is required"),
            "{p:?}"
        );
    }

    #[test]
    fn wrong_field_types_name_the_field() {
        let p = problems(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "x", "tags": ["ok", "Not OK"], "annotations": {"a": 1}, "links": [{"title": "no url"}]},
            "spec": {"type": 3, "lifecycle": "production", "owner": "t", "providesApis": "not-a-list"}}),
        );
        let joined = p.join("\n");
        assert!(
            joined.contains("metadata.tags[1]: tag 'Not OK' is invalid"),
            "{joined}"
        );
        assert!(
            joined.contains("metadata.annotations.a: metadata.annotations.a must be a string"),
            "{joined}"
        );
        assert!(
            joined.contains("metadata.links[0]: a link needs a url"),
            "{joined}"
        );
        assert!(
            joined.contains("spec.type: spec.type must be a non-empty string"),
            "{joined}"
        );
        assert!(
            joined.contains("spec.providesApis: spec.providesApis must be a list"),
            "{joined}"
        );
    }

    #[test]
    fn unknown_kind_and_bad_api_version_and_name() {
        let p = problems(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Robot", "metadata": {"name": "r"}, "spec": {}}),
        );
        assert!(p[0].contains("unknown kind 'Robot'"), "{p:?}");
        let p = problems(
            json!({"apiVersion": "v1", "kind": "Group", "metadata": {"name": "bad name!"}, "spec": {"type": "team"}}),
        );
        assert!(p.iter().any(|m| m.starts_with("apiVersion:")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("metadata.name:")), "{p:?}");
        let e = Kinds::default()
            .validate(json!({"kind": "Group"}))
            .unwrap_err();
        assert!(e.entity_ref.is_none());
    }

    #[test]
    fn invalid_entity_keeps_its_ref_for_last_good_version() {
        let e = Kinds::default()
            .validate(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "a", "namespace": "ops"}, "spec": {"type": "openapi"}}))
            .unwrap_err();
        assert_eq!(e.entity_ref.unwrap().to_string(), "api:ops/a");
        assert!(e.problems.len() >= 3);
    }

    #[test]
    fn group_and_user_relations() {
        let g = Kinds::default()
            .validate(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "payments"},
                "spec": {"type": "team", "parent": "commerce", "children": ["payments-core"], "members": ["ada"]}}))
            .unwrap();
        let rels = relation_strings(&g);
        assert_eq!(
            rels,
            vec![
                "childOf group:default/commerce",
                "parentOf group:default/payments-core",
                "hasMember user:default/ada"
            ]
        );
        assert!(g.owner.is_none());
    }

    #[test]
    fn depends_on_needs_a_kind() {
        let p = problems(component(
            json!({"type": "service", "lifecycle": "production", "owner": "t", "dependsOn": ["db"]}),
        ));
        assert!(
            p[0].starts_with("spec.dependsOn[0]: entity reference 'db' has no kind"),
            "{p:?}"
        );
    }

    #[test]
    fn location_needs_a_target() {
        let p = problems(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "l"}, "spec": {"type": "ftp"}}),
        );
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn qualified_keys() {
        assert!(check_qualified_key("github.com/project-slug").is_ok());
        assert!(check_qualified_key("backstage.io/techdocs-ref").is_ok());
        assert!(check_qualified_key("-bad.com/x").is_err());
        assert!(check_qualified_key("a/b/c").is_err());
    }
}
