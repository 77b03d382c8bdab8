//! Entity names and references: `[kind:][namespace/]name`, compared
//! case-insensitively, always stored in lower case.

use std::fmt;

/// The namespace an entity lives in when its metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A fully qualified, lower-cased entity reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Why a reference string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("empty entity reference")]
    Empty,
    #[error(
        "entity reference '{0}' has no kind and no default kind applies; write it as kind:namespace/name"
    )]
    MissingKind(String),
    #[error("entity reference '{reference}': {reason}")]
    Invalid { reference: String, reason: String },
}

impl EntityRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        EntityRef {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }

    /// Parses `[kind:][namespace/]name`, filling in the defaults that the
    /// referring context allows (Backstage's `parseEntityRef`).
    pub fn parse(
        text: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, RefError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RefError::Empty);
        }
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (Some(kind), rest),
            None => (None, text),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, rest),
        };
        let invalid = |reason: String| RefError::Invalid {
            reference: text.to_string(),
            reason,
        };
        let kind = match kind.or(default_kind) {
            Some(kind) => kind,
            None => return Err(RefError::MissingKind(text.to_string())),
        };
        let namespace = namespace.unwrap_or(default_namespace);
        if kind.is_empty() {
            return Err(invalid("the kind before ':' is empty".into()));
        }
        check_kind(kind).map_err(|r| invalid(format!("kind {r}")))?;
        check_name(namespace).map_err(|r| invalid(format!("namespace {r}")))?;
        check_name(name).map_err(|r| invalid(format!("name {r}")))?;
        Ok(EntityRef::new(kind, namespace, name))
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Checks a name or namespace: 1–63 characters of `[A-Za-z0-9-_.]`, starting
/// and ending with a letter or digit (Backstage's rule). Returns the reason
/// in words when it fails.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "'{name}' is {} characters long; at most 63 are allowed",
            name.len()
        ));
    }
    let bytes = name.as_bytes();
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "'{name}' contains '{bad}'; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(format!(
            "'{name}' must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a kind: letters and digits, starting with a letter.
pub fn check_kind(kind: &str) -> Result<(), String> {
    let valid = kind.len() <= 63
        && kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{kind}' must be 1–63 letters or digits, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_refs_with_defaults() {
        let r = EntityRef::parse("Component:Payments/Checkout-API", None, "default").unwrap();
        assert_eq!(r.to_string(), "component:payments/checkout-api");
        let r = EntityRef::parse("team-a", Some("Group"), "ops").unwrap();
        assert_eq!(r.to_string(), "group:ops/team-a");
        let r = EntityRef::parse("user:jdoe", Some("group"), "default").unwrap();
        assert_eq!(r.to_string(), "user:default/jdoe");
        let r = EntityRef::parse("infra/db", Some("resource"), "default").unwrap();
        assert_eq!(r.to_string(), "resource:infra/db");
    }

    #[test]
    fn rejects_missing_kind_and_bad_names() {
        assert!(matches!(
            EntityRef::parse("foo", None, "default"),
            Err(RefError::MissingKind(_))
        ));
        assert!(matches!(
            EntityRef::parse("", Some("group"), "default"),
            Err(RefError::Empty)
        ));
        let err = EntityRef::parse("group:default/-bad", None, "default").unwrap_err();
        assert!(err.to_string().contains("must start and end"), "{err}");
        assert!(EntityRef::parse(":x", None, "default").is_err());
    }

    #[test]
    fn name_rule_matches_backstage() {
        assert!(check_name("a").is_ok());
        assert!(check_name("my_service.v2-x").is_ok());
        assert!(check_name(&"a".repeat(63)).is_ok());
        assert!(check_name(&"a".repeat(64)).is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name("trailing-").is_err());
        assert!(check_name(".leading").is_err());
        assert!(check_name("").is_err());
    }
}
