//! Typed helpers over the host imports.

use crate::Entity;
use crate::bindings::greenroom::plugin::{catalog, http, kv, log, source};

pub use http::{Header, HttpError, Request, Response};
pub use log::Level;

/// Writes to the host's log, tagged with this plugin's id.
pub fn log(level: Level, message: &str) {
    log::log(level, message);
}

pub fn kv_get(key: &str) -> Option<Vec<u8>> {
    kv::get(key)
}

pub fn kv_set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), String> {
    kv::set(key, value, ttl_seconds)
}

pub fn kv_delete(key: &str) {
    kv::delete(key)
}

pub fn entity(entity_ref: &str) -> Option<Entity> {
    catalog::get_entity(entity_ref)
}

pub fn query(filter: &str, limit: u32) -> Vec<Entity> {
    catalog::query(filter, limit)
}

/// Reads a file beside the entity's catalog file.
pub fn read_file(entity: &Entity, path: &str) -> Result<String, String> {
    source::read_file(&entity.entity_ref, path)
}

/// `GET url` with headers; a header value may name a secret as
/// `{{secret:NAME}}`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    fetch("GET", url, headers, None)
}

pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Response, HttpError> {
    http::fetch(&Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        body,
    })
}
