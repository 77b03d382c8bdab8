//! The service layer: one place per domain operation that holds its rules,
//! checks and records, between the HTTP API (which parses, asks who acts,
//! calls one of these and answers) and the store, plugins and search. Each
//! operation is blocking: the API runs it on a blocking thread.
//!
//! Errors say which rule refused and what to do; [`ServiceError`] maps
//! onto HTTP statuses in `api`.

pub mod actions;
pub mod campaigns;
pub mod docs;
pub mod locations;
pub mod suggestions;
pub mod webhooks;

use crate::store::StoreError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// What was sent cannot be read as asked (400).
    #[error("{0}")]
    BadInput(String),
    /// What it names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// It is not allowed here, whoever asks (403).
    #[error("{0}")]
    Forbidden(String),
    /// It cannot happen in the present state (409).
    #[error("{0}")]
    Conflict(String),
    /// What was sent breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// A plugin failed or answered wrongly (502).
    #[error("{0}")]
    Plugin(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
