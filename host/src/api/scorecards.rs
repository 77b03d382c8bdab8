//! Scorecards over HTTP: the list with how many entities stand at each
//! level, one scorecard with its checks, roll-ups per team and domain,
//! every entity's level and failing checks, each level's history, CSV; an
//! entity's scorecards; and a dry run of a definition before it is saved.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::catalog::Params;
use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::campaigns::history::History;
use crate::campaigns::scorecard::{self, Score, Scorecard};
use crate::catalog::EntityRef;
use crate::store::{Filter, Store, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/scorecards", get(list))
        .route("/api/scorecards/dry-run", post(dry_run))
        .route("/api/scorecards/levels", post(levels))
        .route("/api/scorecards/facet", get(facet))
        .route("/api/scorecards/{name}", get(one))
        .route("/api/scorecards/{name}/entities.csv", get(csv))
        .route("/api/scorecards/{name}/entities", get(at_level))
        .route("/api/scorecards/{name}/nudge", post(nudge_now))
        .route("/api/scorecards/{name}/snooze", post(snooze))
        .route(
            "/api/entities/{kind}/{namespace}/{name}/scorecards",
            get(of_entity),
        )
}

fn find(store: &Store, name: &str) -> Result<Scorecard, ApiError> {
    scorecard::find(store, name)?
        .ok_or_else(|| ApiError::NotFound(format!("no scorecard named {name}")))
}

/// How many pass and fail each check.
fn check_counts(card: &Scorecard, scores: &[Score]) -> Vec<Value> {
    card.checks
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let failing = scores
                .iter()
                .filter(|s| s.failing.iter().any(|(f, _)| *f == ci))
                .count();
            json!({
                "name": c.name,
                "title": c.title,
                "level": card.levels[c.level],
                "when": c.when_text,
                "passing": scores.len() - failing,
                "failing": failing,
            })
        })
        .collect()
}

/// Each group's roll-up, as `{<key>: name, rollup}`.
fn rollups(
    card: &Scorecard,
    groups: std::collections::BTreeMap<String, Vec<&Score>>,
    key: &str,
) -> Vec<Value> {
    groups
        .into_iter()
        .map(|(name, list)| json!({ key: name, "rollup": scorecard::rollup(card, &list) }))
        .collect()
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// A team whose roll-up to add to each scorecard (`team`).
    owner: Option<String>,
}

/// Every scorecard with how many stand at each level; with `?owner=`,
/// that team's roll-up too.
async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = q
        .owner
        .map(|o| {
            EntityRef::parse(&o, Some("group"), "default")
                .map(|r| r.to_string())
                .map_err(|e| ApiError::BadRequest(format!("owner '{o}': {e}")))
        })
        .transpose()?;
    let store = state.store.clone();
    let items = blocking(move || {
        let mut items = Vec::new();
        for card in scorecard::all(&store)? {
            let scores = scorecard::evaluate(&store, &card)?;
            let mut v = card.summary_json();
            v["rollup"] = json!(scorecard::rollup(&card, &scores.iter().collect::<Vec<_>>()));
            if let Some(owner) = &owner {
                let mine: Vec<&Score> = scores
                    .iter()
                    .filter(|s| s.owner.as_deref() == Some(owner.as_str()))
                    .collect();
                v["team"] = json!(scorecard::rollup(&card, &mine));
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
    let store = state.store.clone();
    Ok(Json(blocking(move || page(&store, &name, &q)).await?))
}

/// A scorecard's page. Blocking.
fn page(store: &Store, name: &str, q: &super::DetailQuery) -> Result<Value, ApiError> {
    let days = q.days();
    let card = find(store, name)?;
    let scores = scorecard::evaluate(store, &card)?;
    let all: Vec<&Score> = scores.iter().collect();
    let now = now_ms();
    let mut history = Vec::new();
    for (level, level_name) in card.levels.iter().enumerate() {
        let reached = scores
            .iter()
            .filter(|s| s.level.is_some_and(|l| l >= level))
            .count();
        let recorded = History::of(store, &card.subject(level))?;
        history.push(json!({
            "level": level_name,
            "days": recorded.series(days, now, (reached, scores.len())),
        }));
    }
    let mut v = card.summary_json();
    v["rollup"] = json!(scorecard::rollup(&card, &all));
    v["checks"] = Value::Array(check_counts(&card, &scores));
    v["teams"] = Value::Array(rollups(&card, scorecard::by_team(&scores), "owner"));
    v["domains"] = Value::Array(rollups(
        &card,
        scorecard::by_domain(store, &scores)?,
        "domain",
    ));
    v["history"] = Value::Array(history);
    let predicates: Vec<&crate::campaigns::Predicate> =
        card.checks.iter().map(|c| &c.when).collect();
    v["warnings"] = json!(crate::campaigns::predicate_warnings(store, &predicates)?);
    let (nudges, snoozes) = super::nudges::log(store, &format!("scorecard:{}", card.name))?;
    v["nudges"] = nudges;
    v["snoozes"] = snoozes;
    // Only the page asked for is made into JSON.
    v["items"] = q.page(&scores).iter().map(|s| s.json(&card)).collect();
    v["itemsTotal"] = json!(scores.len());
    Ok(v)
}

async fn csv(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let text = blocking(move || {
        let card = find(&store, &key)?;
        Ok(scorecard::scores_csv(
            &card,
            &scorecard::evaluate(&store, &card)?,
        ))
    })
    .await?;
    let mut response = text.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}-entities.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// An entity's standing on every scorecard that targets it, each check
/// passing or failing with why.
async fn of_entity(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let entity = EntityRef::new(&kind, &namespace, &name);
    let store = state.store.clone();
    let items = blocking(move || {
        Ok(scorecard::of_entity(&store, &entity)?
            .into_iter()
            .map(|(card, score)| {
                json!({
                    "scorecard": card.name,
                    "title": card.title,
                    "levels": card.levels,
                    "level": score.level_name(&card),
                    "checks": card.checks.iter().enumerate().map(|(ci, c)| {
                        let reason = score.failing.iter().find(|(f, _)| *f == ci).map(|(_, why)| why);
                        json!({
                            "name": c.name,
                            "title": c.title,
                            "level": card.levels[c.level],
                            "passed": reason.is_none(),
                            "reason": reason,
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/scorecards/dry-run`: what a scorecard would say before it
/// is saved (`{targets, levels, checks}`), or what is wrong with it.
async fn dry_run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let card = Scorecard::from_api(&body).map_err(|problems| {
        ApiError::BadRequest(
            problems
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let store = state.store.clone();
    let answer = blocking(move || {
        let scores = scorecard::evaluate(&store, &card)?;
        let all: Vec<&Score> = scores.iter().collect();
        let predicates: Vec<&crate::campaigns::Predicate> =
            card.checks.iter().map(|c| &c.when).collect();
        Ok(json!({
            "rollup": scorecard::rollup(&card, &all),
            "checks": check_counts(&card, &scores),
            "teams": rollups(&card, scorecard::by_team(&scores), "owner"),
            "warnings": crate::campaigns::predicate_warnings(&store, &predicates)?,
        }))
    })
    .await?;
    Ok(Json(answer))
}

/// `POST /api/scorecards/:name/nudge`: tells the owners of entities below
/// the scorecard's nudge level now, by its owner or an administrator.
async fn nudge_now(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let (owner, chase) = blocking(move || {
        let Some(card) = scorecard::find(&store, &key)? else {
            return Ok((None, None));
        };
        let chase = crate::campaigns::nudge::of_scorecard(&store, &card)?;
        Ok((Some(card.owner), chase))
    })
    .await?;
    let what = format!("scorecard named {name} that nudges (spec.nudge)");
    Ok(Json(
        super::nudges::send_now(&state, &caller, owner, chase, &what).await?,
    ))
}

/// `POST /api/scorecards/:name/snooze` `{team, until}`.
async fn snooze(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = name.clone();
    let exists = blocking(move || Ok(scorecard::find(&store, &key)?.is_some())).await?;
    let subject = exists.then(|| format!("scorecard:{name}"));
    Ok(Json(
        super::nudges::snooze(&state, &caller, subject, &body).await?,
    ))
}

/// Entities asked for at most in one `levels` request (a page of the
/// catalog, a page of search hits).
const LEVELS_LIMIT: usize = 200;

/// `POST /api/scorecards/levels` `{"entityRefs": [...]}`: each entity's
/// level on every scorecard that targets it, for the catalog table and
/// search hits. Each is read from the entity's own rows.
async fn levels(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let refs: Vec<EntityRef> = body["entityRefs"]
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("expected {\"entityRefs\": [...]}".into()))?
        .iter()
        .take(LEVELS_LIMIT)
        .map(|r| {
            let text = r.as_str().unwrap_or_default();
            EntityRef::parse(text, Some("component"), "default")
                .map_err(|e| ApiError::BadRequest(format!("entityRefs: '{text}': {e}")))
        })
        .collect::<Result<_, _>>()?;
    let store = state.store.clone();
    let items = blocking(move || {
        let cards = scorecard::all(&store)?;
        let mut items = Vec::with_capacity(refs.len());
        for r in &refs {
            let mut levels = Vec::new();
            for card in &cards {
                if let Some(score) = scorecard::score_of(&store, card, r)? {
                    levels.push(json!({"scorecard": card.name, "title": card.title, "level": score.level_name(card)}));
                }
            }
            items.push(json!({"entityRef": r.to_string(), "levels": levels}));
        }
        Ok(items)
    })
    .await?;
    Ok(Json(json!({ "items": items })))
}

/// The refs of the catalog entities `filter` selects; `None` when it
/// selects all of them.
fn selected(
    store: &Store,
    filter: &Filter,
) -> Result<Option<std::collections::HashSet<String>>, ApiError> {
    if filter.0.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        store
            .catalog
            .filter_refs(filter)?
            .into_iter()
            .map(|(_, r, _)| r)
            .collect(),
    ))
}

/// `GET /api/scorecards/facet?filter=`: how many of the entities the
/// catalog filter selects stand at each level of every scorecard (as the
/// history recorder last saw them), for the catalog's Level facet.
async fn facet(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let filter = Filter::parse(Params::new(raw).all("filter"))?;
    let store = state.store.clone();
    let items = blocking(move || {
        let chosen = selected(&store, &filter)?;
        let mut items = Vec::new();
        for card in scorecard::all(&store)? {
            let mut counts = vec![0u64; card.levels.len()];
            let mut none = 0u64;
            for (r, level) in scorecard::recorded_levels(&store, &card)? {
                if chosen.as_ref().is_some_and(|c| !c.contains(&r)) {
                    continue;
                }
                match level {
                    Some(l) => counts[l] += 1,
                    None => none += 1,
                }
            }
            let levels: Vec<Value> = card
                .levels
                .iter()
                .zip(counts)
                .map(|(level, count)| json!({"level": level, "count": count}))
                .collect();
            items.push(json!({
                "scorecard": card.name,
                "title": card.title,
                "levels": levels,
                "none": none,
            }));
        }
        Ok(items)
    })
    .await?;
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/scorecards/{name}/entities?level=gold&filter=&limit=&cursor=&fields=`:
/// one page of the entities at exactly that level (`level=none`: below the
/// first) among those the catalog filter selects, in entity-ref order,
/// shaped as the catalog's by-query answer (the cursor is an offset).
async fn at_level(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw);
    let filter = Filter::parse(p.all("filter"))?;
    let level = p
        .one("level")
        .ok_or_else(|| ApiError::BadRequest("give level=<one of the levels> or level=none".into()))?
        .to_string();
    let limit = p.number("limit")?.unwrap_or(25).clamp(1, 500);
    let offset = p.number("cursor")?.unwrap_or(0);
    let fields = p.list("fields");
    let store = state.store.clone();
    let answer = blocking(move || {
        let card = find(&store, &name)?;
        let wanted = card.level_named(&level).map_err(ApiError::BadRequest)?;
        let chosen = selected(&store, &filter)?;
        let refs = scorecard::refs_at_level(&store, &card, wanted, chosen.as_ref())?;
        let page: Vec<Option<EntityRef>> = refs
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| EntityRef::parse(r, None, "default").ok())
            .collect();
        let items: Vec<Value> = store
            .catalog
            .entities_by_refs(&page, &fields)?
            .into_iter()
            .flatten()
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect();
        let next = offset + limit;
        Ok(json!({
            "items": items,
            "totalItems": refs.len(),
            "pageInfo": {
                "nextCursor": (next < refs.len()).then(|| next.to_string()),
                "prevCursor": (offset > 0).then(|| offset.saturating_sub(limit).to_string()),
            },
        }))
    })
    .await?;
    Ok(Json(answer))
}
