//! Software the entity providers found that no catalog file describes,
//! waiting for a person to claim it (`GET /api/suggestions`).

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, DetailQuery, blocking};
use crate::auth::{Permission, Principal};
use crate::ingest::provider;
use crate::service::suggestions::{self as service, Asked};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/suggestions", get(list))
        .route("/api/suggestions/decide", post(decide))
        .route("/api/suggestions/decisions", get(decisions))
}

#[derive(serde::Deserialize)]
struct Filter {
    /// Only suggestions for these owners: refs, comma-separated
    /// (`group:default/team-a,user:default/jane`); `none` for those
    /// without an owner.
    owner: Option<String>,
    /// Only this provider location (`github/acme`).
    provider: Option<String>,
}

/// The suggestions still unclaimed, by provider then entity ref, a page
/// at a time (`limit`, default 500, and `offset`), with `total` and the
/// count per suggested owner.
async fn list(
    State(state): State<AppState>,
    Query(f): Query<Filter>,
    Query(page): Query<DetailQuery>,
) -> Result<Json<Value>, ApiError> {
    let owners = f.owner.as_deref().map(owners_of).transpose()?;
    let store = state.store.clone();
    let mut all = blocking(move || Ok(provider::suggestions(&store)?)).await?;
    all.retain(|(p, s)| {
        f.provider.as_ref().is_none_or(|want| want == p)
            && owners.as_ref().is_none_or(|o| o.contains(&s.owner))
    });
    all.sort_by(|a, b| (&a.0, &a.1.entity_ref).cmp(&(&b.0, &b.1.entity_ref)));
    Ok(Json(answer(&all, &page)))
}

/// `?owner=`: refs, comma-separated, `none` for no owner.
fn owners_of(text: &str) -> Result<Vec<Option<String>>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| match o {
            "none" => Ok(None),
            _ => super::owner_ref(o).map(Some),
        })
        .collect()
}

/// The page asked for of `all`, its total and the count per owner.
fn answer(all: &[(String, provider::Suggestion)], page: &DetailQuery) -> Value {
    let mut by_owner: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, s) in all {
        *by_owner
            .entry(s.owner.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let items: Vec<Value> = page
        .page(all)
        .iter()
        .map(|(p, s)| {
            json!({
                "provider": p,
                "entityRef": s.entity_ref,
                "owner": s.owner,
                "reason": s.reason,
                "entity": s.entity,
            })
        })
        .collect();
    json!({
        "items": items,
        "total": all.len(),
        "owners": by_owner
            .iter()
            .map(|(o, n)| json!({"owner": (!o.is_empty()).then_some(*o), "count": n}))
            .collect::<Vec<_>>(),
    })
}

/// Accepts, merges or dismisses a suggestion (`{"entityRef", "decision":
/// "accept" | "merge" | "dismiss", "owner"?, "into"?, "note"?}`), as a
/// member of its owner (the one chosen, when accepting) or an
/// administrator. An accepted one is in the catalog when this answers.
async fn decide(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(asked): ApiJson<Asked>,
) -> Result<Json<Value>, ApiError> {
    let (waiting, asked, by) = authorised(&state, &caller, asked).await?;
    let (store, plugins) = (state.store.clone(), state.plugins.clone());
    let config = state.config.clone();
    let location = waiting.location.clone();
    let entity_ref = waiting.suggestion.entity_ref.clone();
    let decided = blocking(move || {
        let landing = service::landing(&config.catalog.providers, &plugins, &waiting.location);
        Ok(service::decide(&store, &waiting, &asked, &by, landing)?)
    })
    .await?;
    if let Some(page) = decided.page {
        state
            .refresher
            .refresh_page(location, page)
            .await
            .map_err(ApiError::Internal)?;
    }
    Ok(Json(
        json!({ "entityRef": entity_ref, "decided": true, "message": decided.message }),
    ))
}

/// The waiting suggestion `asked` names and who decides it (the caller,
/// or the demo's person), once the policy lets them.
async fn authorised(
    state: &AppState,
    caller: &Caller,
    asked: Asked,
) -> Result<(service::Waiting, Asked, String), ApiError> {
    // A token never decides (but an administrator's): refused before
    // anything is looked up.
    if matches!(caller.principal, Principal::Token(_)) {
        caller.require(state, Permission::Claim { owner: None })?;
    }
    let store = state.store.clone();
    let (waiting, asked) = blocking(move || {
        let waiting = service::find(&store, &asked.entity_ref)?;
        Ok((waiting, asked))
    })
    .await?;
    let owner = service::owner_to_check(&asked, &waiting)?;
    let acting = super::actions::acting_person(state, caller, asked.user.clone()).await?;
    acting.require(
        state,
        Permission::Claim {
            owner: owner.as_deref(),
        },
    )?;
    Ok((waiting, asked, acting.actor()))
}

/// Every decision taken on suggestions, newest first, a page at a time.
async fn decisions(
    State(state): State<AppState>,
    Query(page): Query<DetailQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let all = blocking(move || Ok(service::decisions(&store)?)).await?;
    let items: Vec<Value> = page
        .page(&all)
        .iter()
        .map(|(provider, d)| {
            let mut v = json!(d);
            v["provider"] = json!(provider);
            v
        })
        .collect();
    Ok(Json(json!({ "items": items, "total": all.len() })))
}

/// `GET /api/catalog/coverage`: how much of what each entity provider
/// sees (an organisation's repositories) is in the catalog, per team, and
/// per day; with the totals over every provider.
pub(super) async fn coverage(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let all = blocking(move || Ok(provider::coverage(&store)?)).await?;
    let covered: usize = all.iter().map(|c| c.in_catalog + c.merged).sum();
    let waiting: usize = all.iter().map(|c| c.waiting).sum();
    Ok(Json(json!({
        "providers": all,
        "total": {"covered": covered, "waiting": waiting, "percent": provider::percent(covered, waiting)},
    })))
}
