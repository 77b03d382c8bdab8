//! Custom kinds (an `MLModel`, a `Datacenter`): declared in configuration
//! with a JSON Schema for `spec`, validated and related like built-in kinds.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::FieldPath;

/// A custom kind, ready to validate.
pub struct CustomKind {
    /// As declared, e.g. `MLModel`.
    pub kind: String,
    /// Accepted `apiVersion`s; empty accepts any `group/version`.
    pub api_versions: Vec<String>,
    pub owner_required: bool,
    validator: jsonschema::Validator,
}

impl fmt::Debug for CustomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomKind")
            .field("kind", &self.kind)
            .field("api_versions", &self.api_versions)
            .field("owner_required", &self.owner_required)
            .finish_non_exhaustive()
    }
}

/// Why a custom kind could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error("custom kind '{0}' clashes with a built-in kind")]
    BuiltIn(String),
    #[error("custom kind '{kind}': {reason}")]
    InvalidName { kind: String, reason: String },
    #[error("custom kind '{0}' is declared twice")]
    Duplicate(String),
    #[error("custom kind '{kind}': its spec schema is not a valid JSON Schema: {reason}")]
    Schema { kind: String, reason: String },
}

impl CustomKind {
    pub fn new(
        kind: &str,
        api_versions: Vec<String>,
        owner_required: bool,
        schema: &Value,
    ) -> Result<Self, KindError> {
        super::refs::check_kind(kind).map_err(|reason| KindError::InvalidName {
            kind: kind.to_string(),
            reason,
        })?;
        let validator = jsonschema::validator_for(schema).map_err(|e| KindError::Schema {
            kind: kind.to_string(),
            reason: e.to_string(),
        })?;
        Ok(CustomKind {
            kind: kind.to_string(),
            api_versions,
            owner_required,
            validator,
        })
    }

    /// Schema violations of `spec`, each with the path of the field.
    pub fn schema_errors(&self, spec: &Value) -> Vec<(FieldPath, String)> {
        self.validator
            .iter_errors(spec)
            .map(|e| {
                let mut path = FieldPath::default().key("spec");
                for seg in e.instance_path().segments() {
                    path = match seg {
                        jsonschema::paths::LocationSegment::Property(p) => path.key(&p),
                        jsonschema::paths::LocationSegment::Index(i) => path.index(i),
                    };
                }
                let message = format!("{path}: {e} (schema of kind {})", self.kind);
                (path, message)
            })
            .collect()
    }
}

/// The custom kinds a catalog accepts, by lower-cased kind.
#[derive(Debug, Default)]
pub struct Kinds {
    custom: HashMap<String, CustomKind>,
    /// Checks of a kind's `spec` written by other parts of the host (the
    /// campaign predicate language), registered at start-up, so that the
    /// catalog model depends on none of them.
    spec_checks: HashMap<String, SpecCheck>,
}

/// A check of one kind's `spec`: its problems as (dotted field, e.g.
/// `spec.targets[1]`, message); none when the spec is good.
pub type SpecCheck = fn(&serde_json::Value) -> Vec<(String, String)>;

impl Kinds {
    /// Adds a check of `kind`'s spec (lower case), run after the kind's
    /// own rules.
    pub fn add_spec_check(&mut self, kind: &str, check: SpecCheck) {
        self.spec_checks.insert(kind.to_ascii_lowercase(), check);
    }

    /// The spec check registered for `kind` (lower case), if any.
    pub fn spec_check(&self, kind: &str) -> Option<SpecCheck> {
        self.spec_checks.get(kind).copied()
    }

    pub fn add(&mut self, kind: CustomKind) -> Result<(), KindError> {
        let key = kind.kind.to_ascii_lowercase();
        if super::built_in_kinds().any(|b| b.eq_ignore_ascii_case(&key)) {
            return Err(KindError::BuiltIn(kind.kind));
        }
        if self.custom.contains_key(&key) {
            return Err(KindError::Duplicate(kind.kind));
        }
        self.custom.insert(key, kind);
        Ok(())
    }

    pub fn get(&self, kind: &str) -> Option<&CustomKind> {
        self.custom.get(&kind.to_ascii_lowercase())
    }

    pub fn custom(&self) -> impl Iterator<Item = &CustomKind> {
        self.custom.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mlmodel() -> Kinds {
        let schema = json!({
            "type": "object",
            "required": ["framework", "owner"],
            "properties": {
                "framework": {"enum": ["pytorch", "tensorflow", "xgboost"]},
                "owner": {"type": "string"},
                "metrics": {"type": "object", "properties": {"auc": {"type": "number"}}}
            }
        });
        let mut kinds = Kinds::default();
        kinds
            .add(
                CustomKind::new(
                    "MLModel",
                    vec!["greenroom.dev/v1alpha1".into()],
                    true,
                    &schema,
                )
                .unwrap(),
            )
            .unwrap();
        kinds
    }

    #[test]
    fn custom_kind_validates_spec_and_ownership() {
        let kinds = mlmodel();
        let ok = kinds
            .validate(json!({"apiVersion": "greenroom.dev/v1alpha1", "kind": "MLModel", "metadata": {"name": "fraud-scorer"},
                "spec": {"framework": "xgboost", "owner": "team-risk", "system": "fraud"}}))
            .unwrap();
        assert_eq!(ok.owner.unwrap().to_string(), "group:default/team-risk");
        assert_eq!(ok.relations.len(), 2);

        let err = kinds
            .validate(json!({"apiVersion": "greenroom.dev/v1alpha1", "kind": "mlmodel", "metadata": {"name": "m"},
                "spec": {"framework": "sklearn", "owner": "t", "metrics": {"auc": "high"}}}))
            .unwrap_err();
        let fields: Vec<String> = err.problems.iter().map(|p| p.field.to_string()).collect();
        assert!(fields.contains(&"spec.framework".to_string()), "{fields:?}");
        assert!(
            fields.contains(&"spec.metrics.auc".to_string()),
            "{fields:?}"
        );

        let err = kinds
            .validate(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "MLModel", "metadata": {"name": "m"}, "spec": {"framework": "xgboost"}}))
            .unwrap_err();
        let msgs: Vec<String> = err.problems.iter().map(|p| p.message.clone()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("apiVersion 'backstage.io/v1alpha1' is not valid")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("spec.owner is required")),
            "{msgs:?}"
        );
    }

    #[test]
    fn refuses_clashes_and_bad_schemas() {
        let mut kinds = mlmodel();
        assert!(matches!(
            kinds.add(CustomKind::new("Component", vec![], true, &json!({})).unwrap()),
            Err(KindError::BuiltIn(_))
        ));
        assert!(matches!(
            kinds.add(CustomKind::new("mlmodel", vec![], true, &json!({})).unwrap()),
            Err(KindError::Duplicate(_))
        ));
        assert!(matches!(
            CustomKind::new("X", vec![], true, &json!({"type": 12})),
            Err(KindError::Schema { .. })
        ));
    }
}
