//! What campaign and scorecard pages share about nudges: the log and the
//! snoozes, "nudge now" (by the owner or an administrator), and a team's
//! snooze (by its members or an administrator).

use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, AppState, blocking};
use crate::auth::Permission;
use crate::campaigns::nudge::{self, Chase};
use crate::catalog::EntityRef;
use crate::store::{Store, StoreError, now_ms};

/// Nudges shown on a page.
const SHOWN: usize = 100;

/// A subject's nudge log (newest first) and snoozes in force.
pub(super) fn log(store: &Store, subject: &str) -> Result<(Value, Value), StoreError> {
    let now = now_ms();
    let snoozes: Vec<Value> = store
        .nudges
        .snoozes(subject)?
        .into_iter()
        .filter(|(_, until, _)| *until > now)
        .map(|(team, until, by)| json!({"team": team, "untilMs": until, "by": by}))
        .collect();
    Ok((json!(store.nudges.nudges(subject, SHOWN)?), json!(snoozes)))
}

/// How a team is reached, for the chase list: its channels, or that it
/// has none.
pub(super) fn channels_of(contact: &nudge::Contact) -> Value {
    let mut channels = Vec::new();
    if let Some(c) = &contact.slack_channel {
        channels.push(json!({"kind": "slack", "to": c}));
    }
    if let Some(e) = &contact.email {
        channels.push(json!({"kind": "email", "to": e}));
    }
    json!(channels)
}

/// Tells every team of `chase` now, if the caller may change what
/// `owner` owns; `None` for either means there is no such thing (404,
/// after the permission check so that nothing is told to whoever asks).
pub(super) async fn send_now(
    state: &AppState,
    caller: &Caller,
    owner: Option<String>,
    chase: Option<Chase>,
    what: &str,
) -> Result<Value, ApiError> {
    caller.require(
        state,
        Permission::Campaign {
            owner: owner.as_deref().filter(|o| !o.is_empty()),
        },
    )?;
    let chase = chase.ok_or_else(|| ApiError::NotFound(format!("no {what}")))?;
    let sent = state.notifier.now(&chase, now_ms()).await?;
    Ok(json!({ "sent": sent }))
}

/// `{team, until}`: keeps `subject`'s nudges from a team until a date
/// (`2027-01-15`, or an RFC 3339 time; null lifts it), by its members or
/// an administrator.
pub(super) async fn snooze(
    state: &AppState,
    caller: &Caller,
    subject: Option<String>,
    body: &Value,
) -> Result<Value, ApiError> {
    let text = body["team"].as_str().unwrap_or_default();
    let team = EntityRef::parse(text, Some("group"), "default").map(|r| r.to_string());
    caller.require(
        state,
        Permission::Campaign {
            owner: team.as_deref().ok(),
        },
    )?;
    let team = team.map_err(|e| ApiError::BadRequest(format!("team '{text}': {e}")))?;
    let subject =
        subject.ok_or_else(|| ApiError::NotFound("no such campaign or scorecard".into()))?;
    let until = match &body["until"] {
        Value::Null => 0,
        Value::String(t) => {
            let full = if t.len() == 10 {
                format!("{t}T00:00:00Z")
            } else {
                t.clone()
            };
            humantime::parse_rfc3339_weak(&full)
                .ok()
                .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .filter(|ms| *ms > now_ms())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "until '{t}': a future date like 2027-01-15 (or null to lift the snooze)"
                    ))
                })?
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "until: expected a date like 2027-01-15 or null, got {other}"
            )));
        }
    };
    let by = caller.actor();
    let store = state.store.clone();
    let key = team.clone();
    blocking(move || Ok(store.nudges.snooze(&subject, &key, until, &by)?)).await?;
    Ok(json!({"team": team, "untilMs": (until > 0).then_some(until)}))
}
