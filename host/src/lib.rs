//! Greenroom: a developer portal in one process. This crate holds the whole
//! host: the catalog model, ingestion of locations, the SQLite store, the
//! refresh scheduler and the HTTP API. `main.rs` is only the CLI around it.
//!
//! Data flows one way: locations → `ingest` → `catalog` (validate, relate)
//! → `store`; `api` reads the store and asks `scheduler` for refreshes.

pub mod api;
pub mod auth;
pub mod campaigns;
pub mod catalog;
pub mod config;
pub mod dev;
pub mod docs;
pub mod harness;
pub mod ingest;
pub mod insights;
pub mod metrics;
pub mod net;
pub mod oidc;
pub mod plugins;
pub mod scheduler;
pub mod search;
pub mod service;
pub mod store;
pub mod yaml;

use std::sync::Arc;

use anyhow::Context;

/// The kinds a catalog accepts: the built-in ones, the config's custom
/// kinds, and the spec checks other parts of the host register (campaigns).
pub fn kinds(config: &config::Config) -> anyhow::Result<catalog::Kinds> {
    let mut kinds = config.kinds()?;
    campaigns::register(&mut kinds);
    campaigns::scorecard::register(&mut kinds);
    Ok(kinds)
}

/// Everything a running portal needs, built from a config.
pub struct Portal {
    pub state: api::AppState,
    /// The search index was made new and needs a full build.
    fresh_index: bool,
}

impl Portal {
    /// Opens the store, loads custom kinds and registers the configured
    /// locations (without reading them yet).
    pub fn open(config: config::Config) -> anyhow::Result<Portal> {
        // Metrics are recorded from the first request on.
        metrics::handle();
        let kinds = kinds(&config)?;
        let store = Arc::new(store::Store::configured(
            config.server.database.as_deref(),
            &config.store_path(),
        )?);
        // Files and URLs, and entity providers (answered by plugins).
        let mut configured: Vec<(String, String)> = config
            .catalog
            .locations
            .iter()
            .map(|l| (l.kind.clone(), l.target.clone()))
            .collect();
        for p in &config.catalog.providers {
            p.check().map_err(anyhow::Error::msg)?;
            configured.push((ingest::provider::KIND.to_string(), p.target()));
        }
        for (kind, target) in &configured {
            store
                .locations
                .ensure_location(kind, target, store::Origin::Config)
                .with_context(|| format!("registering location {kind}:{target}"))?;
        }
        // A location taken out of the config goes, with its entities;
        // locations added through the API or the CLI stay.
        for stale in store.locations.locations()?.into_iter().filter(|l| {
            l.origin == store::Origin::Config
                && !configured
                    .iter()
                    .any(|(kind, target)| *kind == l.kind && *target == l.target)
        }) {
            tracing::info!(location = %stale.target, "location no longer in the config; removing it and its entities");
            store.locations.delete_location(&stale.id)?;
            store
                .plugin_state
                .kv_delete(ingest::provider::LAST_SEEN, &stale.id)?;
        }
        let reader = ingest::Reader::for_catalog(&config)?;
        let plugins = Arc::new(plugins::Plugins::new(&config, store.clone())?);
        if let Some(dir) = config.plugins_dir() {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the plugins folder {}", dir.display()))?;
            plugins.load_dir(&dir);
            plugins
                .watch(&dir)
                .with_context(|| format!("cannot watch the plugins folder {}", dir.display()))?;
        }
        if let Some(file) = &config.file {
            plugins
                .watch_config(file)
                .with_context(|| format!("cannot watch the config file {}", file.display()))?;
        }
        let ingestor = Arc::new(
            ingest::Ingestor::new(
                Arc::new(kinds),
                reader,
                config.base_dir.clone(),
                ingest::RefreshLimits::of(&config.catalog),
            )
            .with_providers(Arc::new(plugins::providers::PluginProviders::new(
                plugins.clone(),
                &config.catalog.providers,
            ))),
        );
        let refresher = scheduler::Refresher::new(store.clone(), ingestor);
        let insights = scheduler::insights::Insights::new(store.clone(), plugins.clone());
        let search_dir = config.search_dir();
        let (index, fresh) = search::SearchIndex::open(&search_dir)
            .with_context(|| format!("cannot open the search index in {}", search_dir.display()))?;
        let search = search::indexer::Indexer::new(index, store.clone(), plugins.clone())
            .context("cannot start the search indexing thread")?;
        let ingestor = refresher.ingestor().clone();
        search.yield_to(move || ingestor.is_refreshing());
        let oidc = oidc::Oidc::new(&config)?.map(Arc::new);
        let notifier = campaigns::notify::Notifier::new(store.clone(), &config)?;
        Ok(Portal {
            fresh_index: fresh,
            state: api::AppState {
                store,
                refresher,
                plugins,
                insights,
                search,
                config: Arc::new(config),
                limits: Default::default(),
                oidc,
                notifier,
                evaluations: Default::default(),
            },
        })
    }

    /// Serves the API on `listener` and refreshes locations in the
    /// background until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let refresh = self
            .state
            .refresher
            .spawn(self.state.config.catalog.refresh_interval);
        let plugins = &self.state.config.plugins;
        let polls = self.state.insights.spawn(
            self.state.refresher.clone(),
            plugins.facts_interval,
            plugins.events_interval,
        );
        let recorder = scheduler::history::Recorder::new(
            self.state.store.clone(),
            self.state.config.campaigns.history_days,
        )
        .spawn(
            self.state.refresher.clone(),
            self.state.config.campaigns.record_interval,
        );
        let nudging = scheduler::nudges::spawn(
            self.state.store.clone(),
            self.state.notifier.clone(),
            self.state.refresher.clone(),
        );
        let indexing = self
            .state
            .search
            .spawn(self.fresh_index, self.state.config.search.rebuild_interval);
        // The client's address is known to every handler: the sign-in
        // proxy is trusted only from its addresses, and the audit trail
        // records where a write came from.
        let app =
            api::app(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        refresh.abort();
        polls.abort();
        recorder.abort();
        nudging.abort();
        indexing.abort();
        result.context("HTTP server failed")
    }
}
