//! Campaigns over HTTP: the list with progress, one campaign with its
//! per-team breakdown, the teams to chase and the burndown, its targets as
//! CSV, and campaigns made or removed through the API (by their owner, an
//! administrator, or a token with `campaigns:write`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::auth::Permission;
use crate::campaigns::{self, Campaign, TargetStatus, nudge};
use crate::catalog::EntityRef;
use crate::service;
use crate::store::{Status, Store, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/campaigns", get(list).post(create))
        .route("/api/campaigns/dry-run", post(dry_run))
        .route("/api/campaigns/{name}", get(one).delete(remove))
        .route("/api/campaigns/{name}/targets.csv", get(csv))
        .route("/api/campaigns/{name}/history", post(import_history))
        .route("/api/campaigns/{name}/nudge", post(nudge_now))
        .route("/api/campaigns/{name}/snooze", post(snooze))
}

/// Todo targets listed per team in the chase list.
const CHASE_LIST: usize = 50;

/// Teams in the chase list (those with most left first); the rest are
/// counted in `chaseMore`.
const CHASE_TEAMS: usize = 100;

fn progress(targets: &[TargetStatus]) -> Value {
    let done = targets.iter().filter(|t| t.done).count();
    let total = targets.len();
    json!({
        "total": total,
        "done": done,
        "todo": total - done,
        "percent": if total == 0 { 100.0 } else { (done as f64 * 1000.0 / total as f64).round() / 10.0 },
    })
}

/// Each team's progress, teams as `campaigns::by_team` orders them.
fn team_progress(targets: &[TargetStatus]) -> Vec<Value> {
    campaigns::by_team(targets)
        .into_iter()
        .map(|(owner, list)| {
            let owned: Vec<TargetStatus> = list.iter().map(|t| (*t).clone()).collect();
            json!({"owner": owner, "progress": progress(&owned)})
        })
        .collect()
}

/// A campaign from an API body, or every problem with it (400).
fn parse(body: &Value) -> Result<Campaign, ApiError> {
    Campaign::from_api(body).map_err(|problems| {
        ApiError::BadRequest(
            problems
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

fn find(store: &Store, name: &str) -> Result<Campaign, ApiError> {
    campaigns::all(store)?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign named {name}")))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// Owners whose open tasks to list with each campaign: entity refs,
    /// comma-separated (`group:default/team-a,user:default/jane`).
    owner: Option<String>,
}

/// Every campaign with its progress; with `?owner=`, also the targets
/// those owners still have to do (`tasks`, at most 50, and `tasksTodo`).
async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let owners = q.owner.as_deref().map(super::owner_refs).transpose()?;
    let (store, evaluations) = (state.store.clone(), state.evaluations.clone());
    let items = blocking(move || {
        let mut items = Vec::new();
        for c in campaigns::all(&store)? {
            let evaluated = evaluations.get(&store, &c)?;
            let targets = &evaluated.statuses;
            let mut v = c.summary_json();
            v["progress"] = progress(targets);
            if let Some(owners) = &owners {
                let todo: Vec<&TargetStatus> = targets
                    .iter()
                    .filter(|t| !t.done && t.owner.as_ref().is_some_and(|o| owners.contains(o)))
                    .collect();
                v["tasksTodo"] = json!(todo.len());
                v["tasks"] = todo
                    .iter()
                    .take(CHASE_LIST)
                    .map(|t| json!({"entityRef": t.entity_ref, "owner": t.owner, "reason": t.reason}))
                    .collect();
            }
            items.push(v);
        }
        Ok(items)
    })
    .await?;
    Ok(Json(json!({ "items": items })))
}

async fn one(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<super::DetailQuery>,
) -> Result<Json<Value>, ApiError> {
    let (store, evaluations) = (state.store.clone(), state.evaluations.clone());
    Ok(Json(
        blocking(move || page(&store, &evaluations, &name, &q)).await?,
    ))
}

/// The teams with open targets, most left first, each with its contact
/// and its first open targets; and how many more teams there are.
fn chase_list(
    store: &Store,
    targets: &[TargetStatus],
) -> Result<(Vec<Value>, usize), crate::store::StoreError> {
    let mut chase = Vec::new();
    let mut chase_more = 0usize;
    for (owner, list) in campaigns::by_team(targets) {
        let todo: Vec<&TargetStatus> = list.iter().copied().filter(|t| !t.done).collect();
        if todo.is_empty() {
            continue;
        }
        if chase.len() >= CHASE_TEAMS {
            chase_more += 1;
            continue;
        }
        // The team's Group entity, read once for both.
        let group = campaigns::group_entity(store, &owner);
        let channels = super::nudges::channels_of(&nudge::contact_in(&owner, group.as_ref()));
        chase.push(json!({
            "owner": owner,
            "contact": campaigns::contact_of(&owner, group.as_ref()),
            "channels": channels,
            "todo": todo.len(),
            "targets": todo.iter().take(CHASE_LIST).map(|t| json!({"entityRef": t.entity_ref, "reason": t.reason})).collect::<Vec<_>>(),
        }));
    }
    Ok((chase, chase_more))
}

/// A campaign's page: progress overall and per team (each with its
/// burndown), the chase list, the burndown, this week's movers and every
/// target. Blocking.
fn page(
    store: &Store,
    evaluations: &campaigns::Evaluations,
    name: &str,
    q: &super::DetailQuery,
) -> Result<Value, ApiError> {
    let days = q.days();
    let c = find(store, name)?;
    let evaluated = evaluations.get(store, &c)?;
    let (evaluation, targets) = (&evaluated.evaluation, &evaluated.statuses);
    let history = campaigns::history::History::load(store, &c)?;
    let timeline = campaigns::history::Timeline {
        store,
        campaign: &c,
        evaluation,
        statuses: targets,
        history: &history,
    };
    let mut teams = team_progress(targets);
    let owners: Vec<String> = teams
        .iter()
        .map(|t| t["owner"].as_str().unwrap_or_default().to_string())
        .collect();
    let now = now_ms();
    let burndowns = timeline.burndowns(days, now, &owners)?;
    for (team, (_, left)) in teams.iter_mut().zip(burndowns.teams) {
        team["left"] = json!(left);
    }
    let (chase, chase_more) = chase_list(store, targets)?;
    let (nudges, snoozes) = super::nudges::log(store, &campaigns::history::subject(name))?;
    let mut v = c.summary_json();
    v["progress"] = progress(targets);
    v["teams"] = Value::Array(teams);
    v["chase"] = Value::Array(chase);
    v["chaseMore"] = json!(chase_more);
    v["burndown"] = json!(burndowns.overall);
    v["historySince"] = json!(history.first_ms());
    v["movers"] = json!(timeline.movers(now)?);
    v["nudges"] = nudges;
    v["snoozes"] = snoozes;
    v["warnings"] = json!(campaigns::predicate_warnings(store, &[&c.done_when])?);
    v["items"] = json!(q.page(targets));
    v["itemsTotal"] = json!(targets.len());
    Ok(v)
}

async fn csv(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (store, evaluations) = (state.store.clone(), state.evaluations.clone());
    let key = name.clone();
    let text = blocking(move || {
        let c = find(&store, &key)?;
        Ok(campaigns::targets_csv(
            &evaluations.get(&store, &c)?.statuses,
        ))
    })
    .await?;
    let mut response = text.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}-targets.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Creates or replaces a campaign made through the API. A catalog
/// campaign of the same name wins, so that name is refused.
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let campaign = parse(&body)?;
    caller.require(
        &state,
        Permission::Campaign {
            owner: Some(campaign.owner.as_str()).filter(|o| !o.is_empty()),
        },
    )?;
    let by = caller.actor();
    let store = state.store.clone();
    let summary = blocking(move || {
        let targets = service::campaigns::save(&store, &campaign, &by)?;
        let mut v = campaign.summary_json();
        v["progress"] = progress(&targets);
        v["warnings"] = json!(campaigns::predicate_warnings(
            &store,
            &[&campaign.done_when]
        )?);
        Ok(v)
    })
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(summary)))
}

/// `POST /api/campaigns/dry-run`: what a campaign would count before it
/// is saved (an editor asks as the predicate is typed): its progress and
/// each team's, or what is wrong with its definition. Name and owner may
/// be left out; nothing is stored.
async fn dry_run(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    if let Some(fields) = body.as_object_mut() {
        fields.entry("name").or_insert_with(|| json!("dry-run"));
        fields
            .entry("owner")
            .or_insert_with(|| json!("group:default/dry-run"));
    }
    let campaign = parse(&body)?;
    let store = state.store.clone();
    let answer = blocking(move || {
        let targets = campaigns::evaluate(&store, &campaign)?;
        let warnings = campaigns::predicate_warnings(&store, &[&campaign.done_when])?;
        Ok(json!({"progress": progress(&targets), "teams": team_progress(&targets), "warnings": warnings}))
    })
    .await?;
    Ok(Json(answer))
}

async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let owner = blocking(move || Ok(service::campaigns::owner_of(&store, &key)?)).await?;
    caller.require(
        &state,
        Permission::Campaign {
            owner: owner.as_deref().filter(|o| !o.is_empty()),
        },
    )?;
    let store = state.store.clone();
    let key = name.clone();
    blocking(move || Ok(service::campaigns::delete(&store, &key)?)).await?;
    Ok(Json(json!({"deleted": name})))
}

/// Changes imported in one request, at most.
const IMPORT_LIMIT: usize = 100_000;

/// `{"items": [{"entityRef", "status": "open"|"done"|"gone", "at"}]}`
/// as (time, ref, status), or what is wrong with the first bad item.
fn history_items(body: &Value, now: i64) -> Result<Vec<(i64, String, Status)>, ApiError> {
    let items = body["items"]
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("expected {\"items\": [...]}".into()))?;
    if items.len() > IMPORT_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "{} items; send at most {IMPORT_LIMIT} per request",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("items[{i}]");
            let text = item["entityRef"].as_str().unwrap_or_default();
            let r = EntityRef::parse(text, Some("component"), "default")
                .map_err(|e| ApiError::BadRequest(format!("{at}.entityRef '{text}': {e}")))?;
            let status = match item["status"].as_str() {
                Some("open") => Status::Open,
                Some("done") => Status::Done,
                Some("gone") => Status::Gone,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "{at}.status: expected open, done or gone, got {}",
                        item["status"]
                    )));
                }
            };
            if item.get("at").is_none_or(Value::is_null) {
                return Err(ApiError::BadRequest(format!(
                    "{at}.at: when it was so is required"
                )));
            }
            let when = super::insights::time_of(item, &at, now)?;
            if when > now {
                return Err(ApiError::BadRequest(format!(
                    "{at}.at is in the future; history is what already happened"
                )));
            }
            Ok((when, r.to_string(), status))
        })
        .collect()
}

/// `POST /api/campaigns/:name/history`: progress from before the portal
/// tracked the campaign (the spreadsheet it replaces), by its owner or an
/// administrator.
async fn import_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let owner = blocking(move || {
        Ok(campaigns::all(&store)?
            .into_iter()
            .find(|c| c.name == key)
            .map(|c| c.owner))
    })
    .await?;
    caller.require(
        &state,
        Permission::Campaign {
            owner: owner.as_deref().filter(|o| !o.is_empty()),
        },
    )?;
    if owner.is_none() {
        return Err(ApiError::NotFound(format!("no campaign named {name}")));
    }
    let changes = history_items(&body, now_ms())?;
    let store = state.store.clone();
    let added =
        blocking(move || Ok(service::campaigns::import_history(&store, &name, changes)?)).await?;
    Ok(Json(json!({ "imported": added })))
}

/// The owner of campaign `name` and its chase (to be told now), if it
/// exists. Blocking.
fn chase_of(
    store: &Store,
    name: &str,
) -> Result<(Option<String>, Option<campaigns::nudge::Chase>), ApiError> {
    let Some(c) = campaigns::all(store)?.into_iter().find(|c| c.name == name) else {
        return Ok((None, None));
    };
    let every = c
        .nudge_every
        .unwrap_or(std::time::Duration::from_secs(7 * 86_400));
    let chase = campaigns::nudge::campaign_chase(store, &c, every)?;
    Ok((Some(c.owner), Some(chase)))
}

/// `POST /api/campaigns/:name/nudge`: tells every team with open targets
/// now (those not snoozed), by the campaign's owner or an administrator.
async fn nudge_now(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let (owner, chase) = blocking(move || chase_of(&store, &key)).await?;
    let what = format!("campaign named {name}");
    Ok(Json(
        super::nudges::send_now(&state, &caller, owner, chase, &what).await?,
    ))
}

/// `POST /api/campaigns/:name/snooze` `{team, until}`.
async fn snooze(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let exists =
        blocking(move || Ok(campaigns::all(&store)?.iter().any(|c| c.name == key))).await?;
    let subject = exists.then(|| campaigns::history::subject(&name));
    Ok(Json(
        super::nudges::snooze(&state, &caller, subject, &body).await?,
    ))
}
