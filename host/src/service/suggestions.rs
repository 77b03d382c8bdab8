//! Deciding about software a provider suggests for the catalog: accept it
//! (with an owner, who must be in the catalog), say it is an entity the
//! catalog already holds (merge), or dismiss it. Each decision is recorded
//! with who took it and when; an accepted suggestion becomes an entity of
//! its provider location at once (the caller refreshes that part of the
//! location with the page [`decide`] answers) and at every discovery
//! after. Who may decide is the caller's business (`auth`'s `Claim`),
//! checked with [`owner_to_check`] before [`decide`] is called.

use std::sync::Mutex;

use super::ServiceError;
use crate::catalog::EntityRef;
use crate::ingest::Page;
use crate::ingest::provider::{self, Choice, Decision, Suggestion};
use crate::store::{Location, Store, now_ms};

/// What a person asks.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asked {
    pub entity_ref: String,
    /// `accept`, `merge` or `dismiss`.
    pub decision: String,
    /// Accept: the owner (default: the one suggested).
    pub owner: Option<String>,
    /// Merge: the entity in the catalog it is.
    pub into: Option<String>,
    pub note: Option<String>,
    /// Demo only: the person deciding (`user:default/jane`).
    pub user: Option<String>,
}

/// A suggestion still waiting, and the provider location it came from.
pub struct Waiting {
    pub location: Location,
    pub suggestion: Suggestion,
}

/// Decisions are read, changed and written whole per location: one at a
/// time in this process.
static DECIDING: Mutex<()> = Mutex::new(());

fn parse_ref(text: &str, default_kind: &str, what: &str) -> Result<EntityRef, ServiceError> {
    EntityRef::parse(text.trim(), Some(default_kind), "default")
        .map_err(|e| ServiceError::BadInput(format!("{what} '{text}': {e}")))
}

/// The waiting suggestion `entity_ref`. Blocking.
pub fn find(store: &Store, entity_ref: &str) -> Result<Waiting, ServiceError> {
    let wanted = parse_ref(entity_ref, "component", "entityRef")?.to_string();
    let found = provider::suggestions(store)?
        .into_iter()
        .find(|(_, s)| s.entity_ref == wanted);
    if let Some((target, suggestion)) = found
        && let Some(location) = store
            .locations
            .locations()?
            .into_iter()
            .find(|l| l.kind == provider::KIND && l.target == target)
    {
        return Ok(Waiting {
            location,
            suggestion,
        });
    }
    Err(ServiceError::NotFound(format!(
        "no suggestion {wanted} is waiting (GET /api/suggestions lists them)"
    )))
}

/// Whose member may take `asked` on `waiting`: the owner an accepted
/// entity will have, else the one suggested.
pub fn owner_to_check(asked: &Asked, waiting: &Waiting) -> Result<Option<String>, ServiceError> {
    match (asked.decision.as_str(), &asked.owner) {
        ("accept", Some(owner)) => Ok(Some(parse_ref(owner, "group", "owner")?.to_string())),
        _ => Ok(waiting.suggestion.owner.clone()),
    }
}

/// Records `asked` on `waiting` as taken by `by`; for an acceptance,
/// answers the page that puts the entity in the catalog (for
/// `Refresher::refresh_page` on `waiting.location`). Blocking.
pub fn decide(
    store: &Store,
    waiting: &Waiting,
    asked: &Asked,
    by: &str,
) -> Result<Option<Page>, ServiceError> {
    let s = &waiting.suggestion;
    let mut decision = Decision {
        entity_ref: s.entity_ref.clone(),
        decision: Choice::Dismissed,
        owner: None,
        into: None,
        note: asked
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().take(1000).collect()),
        by: by.to_string(),
        at_ms: now_ms(),
    };
    let in_catalog = |r: &EntityRef| -> Result<bool, ServiceError> {
        Ok(store.catalog.entity_origin(r)?.is_some())
    };
    match asked.decision.as_str() {
        "accept" => {
            let owner = match (&asked.owner, &s.owner) {
                (Some(o), _) => parse_ref(o, "group", "owner")?,
                (None, Some(o)) => parse_ref(o, "group", "owner")?,
                (None, None) => {
                    return Err(ServiceError::Invalid(format!(
                        "{} has no suggested owner: send `owner` (a group or user in the catalog)",
                        s.entity_ref
                    )));
                }
            };
            if !in_catalog(&owner)? {
                return Err(ServiceError::Invalid(format!(
                    "owner {owner} is not in the catalog; choose a group or user it holds"
                )));
            }
            decision.decision = Choice::Accepted;
            decision.owner = Some(owner.to_string());
        }
        "merge" => {
            let Some(into) = &asked.into else {
                return Err(ServiceError::BadInput(
                    "merge needs `into`: the entity in the catalog this is".into(),
                ));
            };
            let into = parse_ref(into, "component", "into")?;
            if !in_catalog(&into)? {
                return Err(ServiceError::Invalid(format!(
                    "{into} is not in the catalog; merge into an entity it holds"
                )));
            }
            decision.decision = Choice::Merged;
            decision.into = Some(into.to_string());
        }
        "dismiss" => {}
        other => {
            return Err(ServiceError::BadInput(format!(
                "decision '{other}' is not one of accept, merge, dismiss"
            )));
        }
    }
    let accepted = decision.decision == Choice::Accepted;
    {
        let _one = DECIDING.lock().unwrap_or_else(|p| p.into_inner());
        provider::record_decision(store, &waiting.location.id, decision)?;
    }
    Ok(accepted.then(|| Page {
        suggestions: vec![(s.entity.to_string(), s.reason.clone())],
        ..Page::default()
    }))
}

/// Every decision taken, newest first, with the provider location each
/// suggestion came from. Blocking.
pub fn decisions(store: &Store) -> Result<Vec<(String, Decision)>, ServiceError> {
    let mut all = Vec::new();
    for location in store.locations.locations()? {
        if location.kind == provider::KIND {
            all.extend(
                provider::decisions(store, &location.id)
                    .into_iter()
                    .map(|d| (location.target.clone(), d)),
            );
        }
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.1.at_ms));
    Ok(all)
}
