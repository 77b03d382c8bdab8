//! End-to-end tests of Greenroom: each starts the real server (real store on
//! disk, real HTTP on 127.0.0.1) and talks to it as a client would. One test
//! binary with modules, so the host is linked once.
#![cfg(test)]

mod access;
mod architecture;
mod bad_input;
mod browser;
mod campaigns;
mod catalog_api;
mod compat;
mod coverage;
mod demo;
mod discovery;
mod examples;
mod github;
mod harness;
mod hostile;
mod insights;
mod nudges;
mod pg_server;
mod plugins;
mod providers;
mod scorecards;
mod search;
mod sentry;
mod signin;
mod store_conformance;
mod support;
mod techdocs;
mod web;
