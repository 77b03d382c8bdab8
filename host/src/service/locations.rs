//! Registering a catalog location through the API: only `url` locations
//! (and `file` ones when the operator allows it), only from the origins
//! `catalog.allowed_origins` names; a dry run reads it without storing
//! anything and says whether it is registered already.

use serde_json::Value;

use super::ServiceError;
use crate::config::CatalogConfig;
use crate::ingest::Ingestor;
use crate::store::{Location, Origin, ProblemRecord, Store};

/// What a dry run found.
pub struct Preview {
    pub entities: Vec<Value>,
    pub problems: Vec<ProblemRecord>,
    pub exists: bool,
}

/// Checks that a location of `kind` at `target` may be registered
/// through the API.
pub fn check(
    config: &CatalogConfig,
    ingestor: &Ingestor,
    kind: &str,
    target: &str,
) -> Result<(), ServiceError> {
    match kind {
        "url" => {}
        "file" if config.allow_file_locations_from_api => {}
        "file" => {
            return Err(ServiceError::Forbidden(
                "file locations cannot be added through the API; list them in greenroom.toml under [[catalog.locations]], \
                 or set catalog.allow_file_locations_from_api = true"
                    .into(),
            ));
        }
        other => {
            return Err(ServiceError::BadInput(format!(
                "unknown location type '{other}'; use 'url' or 'file'"
            )));
        }
    }
    if target.trim().is_empty() {
        return Err(ServiceError::BadInput("target must not be empty".into()));
    }
    if kind == "url" {
        let url = reqwest::Url::parse(target)
            .map_err(|e| ServiceError::BadInput(format!("target '{target}': {e}")))?;
        ingestor
            .reader
            .allowed_origin(&url)
            .map_err(|e| ServiceError::Forbidden(e.to_string()))?;
    }
    Ok(())
}

/// Reads the location as a refresh would, storing nothing. Blocking.
pub fn preview(
    store: &Store,
    ingestor: &Ingestor,
    kind: &str,
    target: &str,
) -> Result<Preview, ServiceError> {
    let exists = store
        .locations
        .locations()?
        .into_iter()
        .any(|l| l.kind == kind && l.target == target);
    let (entities, problems) = ingestor.preview(kind, target);
    Ok(Preview {
        entities,
        problems,
        exists,
    })
}

/// Registers the location (checked with [`check`]); a second registration
/// of the same type and target is a conflict. Blocking.
pub fn register(store: &Store, kind: &str, target: &str) -> Result<Location, ServiceError> {
    store
        .locations
        .add_location(kind, target, Origin::Api)
        .map_err(|e| match e {
            crate::store::StoreError::LocationExists(what) => {
                ServiceError::Conflict(format!("location {what} already exists"))
            }
            e => e.into(),
        })
}
