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

/// How an acceptance lands, from the provider location's `accept`.
pub enum Landing<'a> {
    /// In the catalog at once.
    Register,
    /// By a pull request the plugin opens (its `catalog-pull-request`
    /// action), run as the person who accepted.
    PullRequest(&'a crate::plugins::Plugins),
}

/// How an acceptance on `location` lands, from its `[[catalog.providers]]`
/// entry's `accept`.
pub fn landing<'a>(
    providers: &[crate::config::ProviderConfig],
    plugins: &'a crate::plugins::Plugins,
    location: &Location,
) -> Landing<'a> {
    let by_pull_request = providers
        .iter()
        .any(|p| p.target() == location.target && p.accept == crate::config::Accept::PullRequest);
    match by_pull_request {
        true => Landing::PullRequest(plugins),
        false => Landing::Register,
    }
}

/// What a decision did.
pub struct Decided {
    /// The page that puts an accepted entity in the catalog (for
    /// `Refresher::refresh_page` on the suggestion's location).
    pub page: Option<Page>,
    /// What to tell the person (a pull request's address).
    pub message: String,
}

/// Records `asked` on `waiting` as taken by `by`, landing an acceptance
/// as `landing` says. Blocking.
pub fn decide(
    store: &Store,
    waiting: &Waiting,
    asked: &Asked,
    by: &str,
    landing: Landing<'_>,
) -> Result<Decided, ServiceError> {
    let s = &waiting.suggestion;
    let mut decision = Decision {
        entity_ref: s.entity_ref.clone(),
        decision: Choice::Dismissed,
        owner: None,
        into: None,
        pull_request: None,
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
    let mut message = match (&decision.decision, &decision.into) {
        (Choice::Accepted, _) => format!("{} is in the catalog", s.entity_ref),
        (Choice::Merged, Some(into)) => format!("{} is recorded as {into}", s.entity_ref),
        _ => format!("{} is dismissed", s.entity_ref),
    };
    if decision.decision == Choice::Accepted
        && let Landing::PullRequest(plugins) = landing
    {
        let said = pull_request(plugins, waiting, decision.owner.as_deref(), by)?;
        decision.decision = Choice::Proposed;
        decision.pull_request = Some(said.clone());
        message = said;
    }
    let accepted = decision.decision == Choice::Accepted;
    {
        let _one = DECIDING.lock().unwrap_or_else(|p| p.into_inner());
        provider::record_decision(store, &waiting.location.id, decision)?;
    }
    Ok(Decided {
        page: accepted.then(|| Page {
            suggestions: vec![(s.entity.to_string(), s.reason.clone())],
            ..Page::default()
        }),
        message,
    })
}

/// Has the suggestion's plugin open a pull request adding its catalog
/// file with `owner`; answers what the plugin said.
fn pull_request(
    plugins: &crate::plugins::Plugins,
    waiting: &Waiting,
    owner: Option<&str>,
    by: &str,
) -> Result<String, ServiceError> {
    let id = waiting
        .location
        .target
        .split('/')
        .next()
        .unwrap_or_default();
    if !plugins.config().allow_actions.iter().any(|a| a == id) {
        return Err(ServiceError::Forbidden(format!(
            "accepting opens a pull request through plugin {id}, whose actions are off: list it in [plugins] allow_actions"
        )));
    }
    let plugin = plugins
        .enabled()
        .into_iter()
        .find(|p| p.manifest.id == id)
        .ok_or_else(|| {
            ServiceError::Conflict(format!("plugin {id} is not loaded or is disabled"))
        })?;
    let mut entity = waiting.suggestion.entity.clone();
    if let Some(owner) = owner {
        entity["spec"]["owner"] = serde_json::Value::String(owner.to_string());
    }
    let record = crate::plugins::host::entity_record(entity.to_string())
        .ok_or_else(|| ServiceError::Invalid("the suggestion is not an entity".into()))?;
    plugin
        .run_action(
            "catalog-pull-request",
            &record,
            &[],
            &serde_json::Value::Null,
            by,
            &plugins.limits(),
        )
        .map_err(|e| {
            ServiceError::Plugin(format!("plugin {id} could not open the pull request: {e}"))
        })
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
