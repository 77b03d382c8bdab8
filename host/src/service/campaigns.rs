//! Changing a campaign made through the API: a catalog campaign of the
//! same name wins (the name is refused), a campaign that exists keeps its
//! owner's say over it (a new owner is a conflict until it is deleted), and
//! a save is recorded with who made it. Who may change a campaign of an
//! owner is the caller's business (`auth`), checked before these are called.

use super::ServiceError;
use crate::campaigns::{self, Campaign, TargetStatus};
use crate::store::{Status, Store};

/// Saves `campaign` as made by `by`, records its targets' statuses in
/// its history, and answers them. Blocking.
pub fn save(
    store: &Store,
    campaign: &Campaign,
    by: &str,
) -> Result<Vec<TargetStatus>, ServiceError> {
    let existing = campaigns::all(store)?;
    if existing
        .iter()
        .any(|c| c.name == campaign.name && c.source == "catalog")
    {
        return Err(ServiceError::Conflict(format!(
            "the catalog defines a campaign named {}; pick another name",
            campaign.name
        )));
    }
    if let Some(old) = existing.iter().find(|c| c.name == campaign.name)
        && old.owner != campaign.owner
    {
        return Err(ServiceError::Conflict(format!(
            "campaign {} belongs to {}; its owner or an administrator deletes it first",
            campaign.name, old.owner
        )));
    }
    let stored = serde_json::json!({
        "name": campaign.name,
        "title": campaign.title,
        "description": campaign.description,
        "owner": campaign.owner,
        "deadline": campaign.deadline,
        "targets": campaign.targets,
        "doneWhen": campaign.done_when_text,
        "nudge": campaign.nudge_every.map(|every| serde_json::json!({"every": humantime::format_duration(every).to_string()})),
    });
    store
        .campaigns
        .put_campaign(&campaign.name, &stored.to_string(), by)?;
    let targets = campaigns::evaluate(store, campaign)?;
    campaigns::history::record(store, campaign, &targets, crate::store::now_ms())?;
    Ok(targets)
}

/// The owner of the API campaign `name` (empty when it has none), or
/// `None` when there is no such campaign. Blocking.
pub fn owner_of(store: &Store, name: &str) -> Result<Option<String>, ServiceError> {
    Ok(campaigns::all(store)?
        .into_iter()
        .find(|c| c.name == name && c.source == "api")
        .map(|c| c.owner))
}

/// Deletes the API campaign `name` and its history. Blocking.
pub fn delete(store: &Store, name: &str) -> Result<(), ServiceError> {
    if store.campaigns.delete_campaign(name)? {
        store
            .statuses
            .forget_statuses(&campaigns::history::subject(name))?;
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "no campaign named {name} made through the API (catalog campaigns go with their entity)"
        )))
    }
}

/// Adds changes from before the portal tracked campaign `name` (the
/// spreadsheet it replaces): each is (time, target ref, status). They
/// join the history in time order; what the host recorded since stays
/// what each target is now. Answers how many were added. Blocking.
pub fn import_history(
    store: &Store,
    name: &str,
    changes: Vec<(i64, String, Status)>,
) -> Result<usize, ServiceError> {
    if !campaigns::all(store)?.iter().any(|c| c.name == name) {
        return Err(ServiceError::NotFound(format!("no campaign named {name}")));
    }
    let mut by_time: std::collections::BTreeMap<i64, Vec<(String, Status)>> = Default::default();
    let count = changes.len();
    for (at, r, status) in changes {
        by_time.entry(at).or_default().push((r, status));
    }
    let subject = campaigns::history::subject(name);
    for (at, changes) in by_time {
        store.statuses.record_statuses(&subject, at, &changes)?;
    }
    Ok(count)
}
