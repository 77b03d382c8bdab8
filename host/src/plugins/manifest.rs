//! A plugin's manifest: who it is and what it asks for. The SDK embeds it
//! as JSON in the custom section `greenroom:manifest` of the component's
//! core module; unknown fields are refused so a typo never silently asks for
//! less than intended.

use serde::{Deserialize, Serialize};

/// The custom section holding the manifest.
pub const SECTION: &str = "greenroom:manifest";

/// In `hosts`: any origin an administrator grants.
pub const ANY_HOST: &str = "*";

/// Default kv quota when a manifest names none: 1 MiB.
pub const DEFAULT_KV_QUOTA: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[a-z0-9-]`, unique in a portal, e.g. `github`.
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// `scheme://host[:port]` the plugin wants to call, or `*` for "any
    /// origin an administrator grants" (a plugin whose base URL is
    /// configured, like GitHub Enterprise or self-hosted Sentry).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Names of secrets the plugin wants the host to inject.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Bytes of kv storage it wants.
    #[serde(default = "default_quota")]
    pub kv_quota: u64,
    /// The entities it has something to say about; the host calls it for
    /// no other (every entity when absent).
    #[serde(default, skip_serializing_if = "AppliesTo::is_everything")]
    pub applies_to: AppliesTo,
}

/// Which entities a plugin is called for: each list that is not empty must
/// match (`kinds` and `types` case-insensitively, `annotations` by any one
/// present), e.g. `{"kinds": ["component"], "annotations":
/// ["github.com/project-slug"]}`. Calls for other entities are answered
/// "not applicable" by the host without running the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// `spec.type` values, e.g. `service`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Annotation keys, any one of which must be set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
}

impl AppliesTo {
    pub fn is_everything(&self) -> bool {
        self.kinds.is_empty() && self.types.is_empty() && self.annotations.is_empty()
    }

    /// Whether an entity (Backstage JSON) is one of these.
    pub fn matches(&self, kind: &str, entity_json: &str) -> bool {
        if self.is_everything() {
            return true;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
            return false;
        }
        if self.types.is_empty() && self.annotations.is_empty() {
            return true;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(entity_json) else {
            return false;
        };
        let spec_type = v["spec"]["type"].as_str().unwrap_or_default();
        if !self.types.is_empty() && !self.types.iter().any(|t| t.eq_ignore_ascii_case(spec_type)) {
            return false;
        }
        let annotations = &v["metadata"]["annotations"];
        self.annotations.is_empty()
            || self.annotations.iter().any(|a| {
                annotations[a.as_str()]
                    .as_str()
                    .is_some_and(|x| !x.is_empty())
            })
    }
}

fn default_quota() -> u64 {
    DEFAULT_KV_QUOTA
}

/// Why a file is not a usable plugin.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    #[error(
        "is a core WebAssembly module, not a component: build it for wasm32-wasip2, or wrap it with `wasm-tools component new` (with WASI's preview1 adapter for a wasip1 module)"
    )]
    CoreModule,
    #[error(
        "has no `{SECTION}` custom section: add one to a component built with any toolchain with `greenroom plugin embed-manifest <component.wasm> --manifest manifest.json --output plugin.wasm`, or declare it with the Rust SDK's `manifest!`"
    )]
    Missing,
    #[error("its manifest is invalid JSON: {0}")]
    Invalid(String),
    #[error("its manifest is invalid: {0}")]
    Field(String),
}

/// A plugin id: 1–63 of a-z, 0-9 and '-', not starting with '-'.
pub fn check_id(id: &str) -> Result<(), ManifestError> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(ManifestError::Field(format!(
            "id '{id}' must be 1–63 of a-z, 0-9 and '-'"
        )))
    }
}

impl Manifest {
    /// Reads the manifest from a component's bytes (the section may sit in
    /// the component or in any core module inside it).
    pub fn from_wasm(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(ManifestError::CoreModule);
        }
        let mut found = None;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| ManifestError::NotWasm(e.to_string()))?;
            if let wasmparser::Payload::CustomSection(section) = payload
                && section.name() == SECTION
            {
                found = Some(section.data().to_vec());
            }
        }
        let data = found.ok_or(ManifestError::Missing)?;
        let manifest: Manifest =
            serde_json::from_slice(&data).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Appends the manifest as a `greenroom:manifest` custom section to a
    /// component built by a toolchain without the Rust SDK (componentize-py,
    /// componentize-js, wit-bindgen C). Refuses a component that has one.
    pub fn embed(&self, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
        self.check()?;
        match Manifest::from_wasm(component) {
            Err(ManifestError::Missing) => {}
            Ok(_) | Err(ManifestError::Invalid(_)) | Err(ManifestError::Field(_)) => {
                return Err(ManifestError::Field(
                    "the component already has a manifest".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        self.append_to(component)
    }

    /// The component with `self` as its manifest in place of the one it
    /// carries (a section appended after it: the last one is read). For a
    /// test host that serves recorded answers in place of the hosts the
    /// manifest names.
    pub fn replace_in(&self, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
        self.check()?;
        Manifest::from_wasm(component)?;
        self.append_to(component)
    }

    fn append_to(&self, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
        let data = serde_json::to_vec(self).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let mut payload = Vec::with_capacity(data.len() + SECTION.len() + 8);
        leb128(&mut payload, SECTION.len());
        payload.extend_from_slice(SECTION.as_bytes());
        payload.extend_from_slice(&data);
        let mut out = Vec::with_capacity(component.len() + payload.len() + 8);
        out.extend_from_slice(component);
        out.push(0); // custom section
        leb128(&mut out, payload.len());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// What the host requires of every manifest (id, version, fields).
    pub fn check(&self) -> Result<(), ManifestError> {
        check_id(&self.id)?;
        if self.version.is_empty() {
            return Err(ManifestError::Field("version is empty".into()));
        }
        for h in self.hosts.iter().filter(|h| h.as_str() != ANY_HOST) {
            crate::net::Origin::parse(h)
                .map_err(|e| ManifestError::Field(format!("hosts: {e}")))?;
        }
        let a = &self.applies_to;
        for (field, values) in [
            ("kinds", &a.kinds),
            ("types", &a.types),
            ("annotations", &a.annotations),
        ] {
            if values.iter().any(|v| v.trim().is_empty()) {
                return Err(ManifestError::Field(format!(
                    "applies_to.{field} holds an empty name: remove it, or remove the list to apply to every entity"
                )));
            }
        }
        Ok(())
    }
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str) -> Manifest {
        Manifest {
            id: id.into(),
            name: "Test".into(),
            version: "1.0.0".into(),
            description: String::new(),
            hosts: vec!["*".into()],
            secrets: vec![],
            kv_quota: DEFAULT_KV_QUOTA,
            applies_to: AppliesTo::default(),
        }
    }

    #[test]
    fn a_plugin_applies_to_the_entities_its_manifest_names() {
        let raw = br#"{"id": "gh", "name": "GH", "version": "1", "applies_to": {"kinds": ["Component", "api"], "types": ["service"], "annotations": ["github.com/project-slug", "backstage.io/source-location"]}}"#;
        let m: Manifest = serde_json::from_slice(raw).unwrap();
        let a = &m.applies_to;
        let entity = |kind: &str, ty: &str, annotation: &str| {
            format!(
                r#"{{"kind": "{kind}", "metadata": {{"name": "x", "annotations": {{"{annotation}": "acme/x"}}}}, "spec": {{"type": "{ty}"}}}}"#
            )
        };
        assert!(a.matches(
            "Component",
            &entity("Component", "service", "github.com/project-slug")
        ));
        assert!(a.matches(
            "API",
            &entity("API", "Service", "backstage.io/source-location")
        ));
        assert!(
            !a.matches(
                "Resource",
                &entity("Resource", "service", "github.com/project-slug")
            ),
            "kind"
        );
        assert!(
            !a.matches(
                "Component",
                &entity("Component", "website", "github.com/project-slug")
            ),
            "type"
        );
        assert!(
            !a.matches(
                "Component",
                &entity("Component", "service", "sentry.io/project")
            ),
            "annotation"
        );
        assert!(AppliesTo::default().matches("Anything", "not even json"));
        // Written back as read, and left out when it is everything.
        let with = m.embed(EMPTY_COMPONENT).unwrap();
        assert_eq!(Manifest::from_wasm(&with).unwrap(), m);
        assert!(
            !serde_json::to_string(&manifest("plain"))
                .unwrap()
                .contains("applies_to")
        );
        let empty = br#"{"id": "x", "name": "X", "version": "1", "applies_to": {"kinds": [""]}}"#;
        let m: Manifest = serde_json::from_slice(empty).unwrap();
        assert!(
            matches!(m.embed(EMPTY_COMPONENT), Err(ManifestError::Field(e)) if e.contains("applies_to.kinds"))
        );
        let typo = br#"{"id": "x", "name": "X", "version": "1", "applies_to": {"kind": ["api"]}}"#;
        assert!(
            serde_json::from_slice::<Manifest>(typo)
                .unwrap_err()
                .to_string()
                .contains("kind")
        );
    }

    /// The smallest component: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn embeds_and_reads_back_a_manifest() {
        let with = manifest("py-hello").embed(EMPTY_COMPONENT).unwrap();
        assert_eq!(Manifest::from_wasm(&with).unwrap(), manifest("py-hello"));
        assert!(
            manifest("again").embed(&with).is_err(),
            "one manifest per component"
        );
        assert!(manifest("Bad Id").embed(EMPTY_COMPONENT).is_err());
        assert_eq!(
            Manifest::from_wasm(EMPTY_COMPONENT),
            Err(ManifestError::Missing)
        );
        assert!(
            ManifestError::Missing
                .to_string()
                .contains("greenroom plugin embed-manifest"),
            "a component from any toolchain is pointed at the command that fixes it"
        );
        assert!(matches!(
            Manifest::from_wasm(b"nope"),
            Err(ManifestError::NotWasm(_))
        ));
        // A core module (what a wasip1 build or `cargo build --target
        // wasm32-unknown-unknown` gives), manifest or not, is named as such.
        let mut core = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(Manifest::from_wasm(&core), Err(ManifestError::CoreModule));
        let with = manifest("core").embed(EMPTY_COMPONENT).unwrap();
        core.extend_from_slice(&with[EMPTY_COMPONENT.len()..]);
        assert_eq!(Manifest::from_wasm(&core), Err(ManifestError::CoreModule));
        assert!(
            ManifestError::CoreModule
                .to_string()
                .contains("wasm-tools component new")
        );
    }

    #[test]
    fn refuses_unknown_fields_and_bad_hosts() {
        let mut bad = manifest("x");
        bad.hosts = vec!["ftp://x".into()];
        assert!(bad.embed(EMPTY_COMPONENT).is_err());
        let raw = br#"{"id": "x", "name": "X", "version": "1", "hostz": []}"#;
        let mut payload = vec![SECTION.len() as u8];
        payload.extend_from_slice(SECTION.as_bytes());
        payload.extend_from_slice(raw);
        let mut w = EMPTY_COMPONENT.to_vec();
        w.push(0);
        w.push(payload.len() as u8);
        w.extend_from_slice(&payload);
        assert!(
            matches!(Manifest::from_wasm(&w), Err(ManifestError::Invalid(m)) if m.contains("hostz"))
        );
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Any bytes, and a component whose manifest section holds any
            /// bytes: a manifest or a clear error, never a panic.
            #[test]
            fn fuzz_manifest_reader(bytes in proptest::collection::vec(any::<u8>(), 0..400), json in "\\PC{0,200}") {
                let _ = Manifest::from_wasm(&bytes);
                let mut component = b"\0asm\x0d\0\x01\0".to_vec();
                let name = SECTION.as_bytes();
                let payload_len = 1 + name.len() + json.len();
                let mut len = payload_len;
                let mut leb = Vec::new();
                loop {
                    let byte = (len & 0x7f) as u8;
                    len >>= 7;
                    if len == 0 { leb.push(byte); break; }
                    leb.push(byte | 0x80);
                }
                component.push(0);
                component.extend(leb);
                component.push(name.len() as u8);
                component.extend(name);
                component.extend(json.as_bytes());
                match Manifest::from_wasm(&component) {
                    Ok(m) => prop_assert!(!m.id.is_empty()),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}
