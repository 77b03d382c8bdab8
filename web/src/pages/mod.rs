//! One module per page (or family of pages).

pub mod audit;
pub mod campaigns;
pub mod catalog;
pub mod docs;
pub mod entity;
pub mod home;
pub mod plugins;
pub mod scorecards;
pub mod search;
pub mod suggestions;
