//! Write Greenroom plugins in Rust.
//!
//! A plugin is a `cdylib` built for `wasm32-wasip2`. It declares its
//! manifest, implements [`Plugin`] (every method has a default, so it
//! implements only what it needs), enables the matching cargo features
//! (`cards`, `facts`, ...) so that exactly those interfaces are exported,
//! and registers itself:
//!
//! ```ignore
//! use greenroom_plugin_sdk::{Card, CardBuilder, Entity, Plugin, PluginError, manifest, register_plugin};
//!
//! manifest!(r#"{"id": "hello", "name": "Hello", "version": "0.1.0"}"#);
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
//!         Ok(vec![CardBuilder::new("hello", "Hello").text(&format!("Hello, {}!", entity.name)).build()])
//!     }
//! }
//!
//! register_plugin!(Hello);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "host-imports", generate_all });
}

#[cfg(feature = "cards")]
#[doc(hidden)]
pub mod cards_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-cards",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_cards",
        default_bindings_module: "greenroom_plugin_sdk::cards_bindings",
    });
}

#[cfg(feature = "facts")]
#[doc(hidden)]
pub mod facts_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-facts",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_facts",
        default_bindings_module: "greenroom_plugin_sdk::facts_bindings",
    });
}

#[cfg(feature = "events")]
#[doc(hidden)]
pub mod events_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-events",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_events",
        default_bindings_module: "greenroom_plugin_sdk::events_bindings",
    });
}

#[cfg(feature = "search")]
#[doc(hidden)]
pub mod search_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-search",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_search",
        default_bindings_module: "greenroom_plugin_sdk::search_bindings",
    });
}

#[cfg(feature = "actions")]
#[doc(hidden)]
pub mod actions_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-actions",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_actions",
        default_bindings_module: "greenroom_plugin_sdk::actions_bindings",
    });
}

#[cfg(feature = "docs")]
#[doc(hidden)]
pub mod docs_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-docs",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_docs",
        default_bindings_module: "greenroom_plugin_sdk::docs_bindings",
    });
}

#[cfg(feature = "tabs")]
#[doc(hidden)]
pub mod tabs_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-tabs",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_tabs",
        default_bindings_module: "greenroom_plugin_sdk::tabs_bindings",
    });
}

#[cfg(feature = "widgets")]
#[doc(hidden)]
pub mod widgets_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-widgets",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_widgets",
        default_bindings_module: "greenroom_plugin_sdk::widgets_bindings",
    });
}

#[cfg(feature = "providers")]
#[doc(hidden)]
pub mod providers_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-providers",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_providers",
        default_bindings_module: "greenroom_plugin_sdk::providers_bindings",
    });
}

#[cfg(feature = "webhooks")]
#[doc(hidden)]
pub mod webhooks_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "export-webhooks",
        with: { "greenroom:plugin/types@0.2.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_webhooks",
        default_bindings_module: "greenroom_plugin_sdk::webhooks_bindings",
    });
}

pub mod card;
pub mod host;
pub mod time;

pub use bindings::greenroom::plugin::types::{
    Action, Badge, Card, Cell, Choice, ChoiceInput, DocPage, Entity, Event, Fact, FactValue, Field,
    Input, InputField, InputKind, InputValue, Link, Node, NumberInput, PluginError, Progress,
    ProviderFile, ProviderPage, SearchDocument, Suggestion, Tab, Table, TextInput, Tone,
    WebhookOutcome,
};
pub use card::CardBuilder;

/// The version of the plugin contract this SDK builds against.
pub const WIT_VERSION: &str = "0.2.0";

// Lets the host (and `greenroom plugin inspect`) tell which SDK built a plugin.
#[used]
#[unsafe(link_section = "greenroom:sdk")]
static SDK_VERSION: [u8; 5] = *b"0.2.0";

/// What a plugin does. Every method has a default, so adding one to the
/// contract never breaks a plugin; override what you implement and enable
/// its cargo feature.
pub trait Plugin {
    /// Cards for an entity's page (feature `cards`).
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let _ = entity;
        Err(PluginError::NotApplicable)
    }

    /// Facts about an entity (feature `facts`).
    fn facts(entity: Entity) -> Result<Vec<Fact>, PluginError> {
        let _ = entity;
        Err(PluginError::NotApplicable)
    }

    /// Events since a time in ms since the epoch (feature `events`).
    fn events(since_ms: u64) -> Result<Vec<Event>, PluginError> {
        let _ = since_ms;
        Err(PluginError::NotApplicable)
    }

    /// Documents for global search (feature `search`).
    fn search_documents(entity: Entity) -> Result<Vec<SearchDocument>, PluginError> {
        let _ = entity;
        Err(PluginError::NotApplicable)
    }

    /// Actions an owner can take on an entity (feature `actions`).
    fn actions(entity: Entity) -> Vec<Action> {
        let _ = entity;
        Vec::new()
    }

    /// Runs action `id` for `actor` (the signed-in person's catalog ref)
    /// with its form's values, already checked by the host against the
    /// fields the action declared (feature `actions`). [`input`] finds a
    /// value by name.
    fn run_action(
        id: String,
        entity: Entity,
        inputs: Vec<Input>,
        actor: String,
    ) -> Result<String, PluginError> {
        let _ = (id, entity, inputs, actor);
        Err(PluginError::NotApplicable)
    }

    /// A documentation page (feature `docs`).
    fn doc_page(entity: Entity, path: String) -> Result<DocPage, PluginError> {
        let _ = (entity, path);
        Err(PluginError::NotApplicable)
    }

    /// Whole tabs on an entity's page (feature `tabs`).
    fn tabs(entity: Entity) -> Result<Vec<Tab>, PluginError> {
        let _ = entity;
        Err(PluginError::NotApplicable)
    }

    /// Homepage widgets for `viewer`, the signed-in person's catalog ref
    /// if anyone is signed in (feature `widgets`).
    fn widgets(viewer: Option<String>) -> Result<Vec<Card>, PluginError> {
        let _ = viewer;
        Err(PluginError::NotApplicable)
    }

    /// The page of entity provider location `name` (its settings in
    /// `config`, a JSON object as text) that starts at `cursor` (`None`:
    /// the first) (feature `providers`).
    fn discover(
        name: String,
        config: String,
        cursor: Option<String>,
    ) -> Result<ProviderPage, PluginError> {
        let _ = (name, config, cursor);
        Err(PluginError::NotApplicable)
    }

    /// A webhook delivery the host verified: the source's event name
    /// (`push`) and the body as sent (feature `webhooks`).
    fn webhook(event: String, payload: String) -> Result<WebhookOutcome, PluginError> {
        let _ = (event, payload);
        Err(PluginError::NotApplicable)
    }
}

/// The value of the form field `name` among an action's inputs.
pub fn input<'a>(inputs: &'a [Input], name: &str) -> Option<&'a InputValue> {
    inputs.iter().find(|i| i.name == name).map(|i| &i.value)
}

/// The text of the form field `name` (a text or a choice), if given.
pub fn input_text<'a>(inputs: &'a [Input], name: &str) -> Option<&'a str> {
    match input(inputs, name)? {
        InputValue::Text(t) => Some(t),
        _ => None,
    }
}

/// Exports the interfaces enabled by cargo features for `$plugin`.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ident) => {
        $crate::__export_cards!($plugin);
        $crate::__export_facts!($plugin);
        $crate::__export_events!($plugin);
        $crate::__export_search!($plugin);
        $crate::__export_actions!($plugin);
        $crate::__export_docs!($plugin);
        $crate::__export_tabs!($plugin);
        $crate::__export_widgets!($plugin);
        $crate::__export_providers!($plugin);
        $crate::__export_webhooks!($plugin);
    };
}

#[cfg(feature = "cards")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_cards {
    ($plugin:ident) => {
        impl $crate::cards_bindings::exports::greenroom::plugin::cards::Guest for $plugin {
            fn cards(entity: $crate::Entity) -> ::core::result::Result<::std::vec::Vec<$crate::Card>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::cards(entity)
            }
        }
        $crate::cards_bindings::export_cards!($plugin with_types_in $crate::cards_bindings);
    };
}

#[cfg(not(feature = "cards"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_cards {
    ($plugin:ident) => {};
}

#[cfg(feature = "facts")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_facts {
    ($plugin:ident) => {
        impl $crate::facts_bindings::exports::greenroom::plugin::facts::Guest for $plugin {
            fn facts(entity: $crate::Entity) -> ::core::result::Result<::std::vec::Vec<$crate::Fact>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::facts(entity)
            }
        }
        $crate::facts_bindings::export_facts!($plugin with_types_in $crate::facts_bindings);
    };
}

#[cfg(not(feature = "facts"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_facts {
    ($plugin:ident) => {};
}

#[cfg(feature = "events")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_events {
    ($plugin:ident) => {
        impl $crate::events_bindings::exports::greenroom::plugin::events::Guest for $plugin {
            fn events(since_ms: u64) -> ::core::result::Result<::std::vec::Vec<$crate::Event>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::events(since_ms)
            }
        }
        $crate::events_bindings::export_events!($plugin with_types_in $crate::events_bindings);
    };
}

#[cfg(not(feature = "events"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_events {
    ($plugin:ident) => {};
}

#[cfg(feature = "search")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_search {
    ($plugin:ident) => {
        impl $crate::search_bindings::exports::greenroom::plugin::search::Guest for $plugin {
            fn documents(entity: $crate::Entity) -> ::core::result::Result<::std::vec::Vec<$crate::SearchDocument>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::search_documents(entity)
            }
        }
        $crate::search_bindings::export_search!($plugin with_types_in $crate::search_bindings);
    };
}

#[cfg(not(feature = "search"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_search {
    ($plugin:ident) => {};
}

#[cfg(feature = "actions")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_actions {
    ($plugin:ident) => {
        impl $crate::actions_bindings::exports::greenroom::plugin::actions::Guest for $plugin {
            fn available(entity: $crate::Entity) -> ::std::vec::Vec<$crate::Action> {
                <$plugin as $crate::Plugin>::actions(entity)
            }
            fn run(
                id: ::std::string::String,
                entity: $crate::Entity,
                inputs: ::std::vec::Vec<$crate::Input>,
                actor: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, $crate::PluginError> {
                <$plugin as $crate::Plugin>::run_action(id, entity, inputs, actor)
            }
        }
        $crate::actions_bindings::export_actions!($plugin with_types_in $crate::actions_bindings);
    };
}

#[cfg(not(feature = "actions"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_actions {
    ($plugin:ident) => {};
}

#[cfg(feature = "docs")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_docs {
    ($plugin:ident) => {
        impl $crate::docs_bindings::exports::greenroom::plugin::docs::Guest for $plugin {
            fn page(entity: $crate::Entity, path: ::std::string::String) -> ::core::result::Result<$crate::DocPage, $crate::PluginError> {
                <$plugin as $crate::Plugin>::doc_page(entity, path)
            }
        }
        $crate::docs_bindings::export_docs!($plugin with_types_in $crate::docs_bindings);
    };
}

#[cfg(not(feature = "docs"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_docs {
    ($plugin:ident) => {};
}

/// Embeds the plugin's manifest (JSON) as the `greenroom:manifest` custom
/// section: `id`, `name`, `version`, and optionally `description`, `hosts`
/// (`["https://api.github.com"]`), `secrets` (`["GITHUB_TOKEN"]`) and
/// `kv_quota` (bytes). The host checks it when loading the plugin.
#[macro_export]
macro_rules! manifest {
    ($json:expr) => {
        const _: () = {
            const BYTES: &[u8] = $json.as_bytes();
            #[used]
            #[unsafe(link_section = "greenroom:manifest")]
            static MANIFEST: [u8; BYTES.len()] = $crate::__bytes(BYTES);
        };
    };
}

#[doc(hidden)]
pub const fn __bytes<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = src[i];
        i += 1;
    }
    out
}

impl Entity {
    /// The entity as JSON.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.json).unwrap_or_default()
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.value()["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_string)
    }
}

#[cfg(feature = "tabs")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_tabs {
    ($plugin:ident) => {
        impl $crate::tabs_bindings::exports::greenroom::plugin::tabs::Guest for $plugin {
            fn tabs(entity: $crate::Entity) -> ::core::result::Result<::std::vec::Vec<$crate::Tab>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::tabs(entity)
            }
        }
        $crate::tabs_bindings::export_tabs!($plugin with_types_in $crate::tabs_bindings);
    };
}

#[cfg(not(feature = "tabs"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_tabs {
    ($plugin:ident) => {};
}

#[cfg(feature = "widgets")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_widgets {
    ($plugin:ident) => {
        impl $crate::widgets_bindings::exports::greenroom::plugin::widgets::Guest for $plugin {
            fn widgets(viewer: ::core::option::Option<::std::string::String>) -> ::core::result::Result<::std::vec::Vec<$crate::Card>, $crate::PluginError> {
                <$plugin as $crate::Plugin>::widgets(viewer)
            }
        }
        $crate::widgets_bindings::export_widgets!($plugin with_types_in $crate::widgets_bindings);
    };
}

#[cfg(not(feature = "widgets"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_widgets {
    ($plugin:ident) => {};
}

#[cfg(feature = "providers")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_providers {
    ($plugin:ident) => {
        impl $crate::providers_bindings::exports::greenroom::plugin::providers::Guest for $plugin {
            fn discover(
                name: ::std::string::String,
                config: ::std::string::String,
                cursor: ::core::option::Option<::std::string::String>,
            ) -> ::core::result::Result<$crate::ProviderPage, $crate::PluginError> {
                <$plugin as $crate::Plugin>::discover(name, config, cursor)
            }
        }
        $crate::providers_bindings::export_providers!($plugin with_types_in $crate::providers_bindings);
    };
}

#[cfg(not(feature = "providers"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_providers {
    ($plugin:ident) => {};
}

#[cfg(feature = "webhooks")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_webhooks {
    ($plugin:ident) => {
        impl $crate::webhooks_bindings::exports::greenroom::plugin::webhooks::Guest for $plugin {
            fn handle(
                event: ::std::string::String,
                payload: ::std::string::String,
            ) -> ::core::result::Result<$crate::WebhookOutcome, $crate::PluginError> {
                <$plugin as $crate::Plugin>::webhook(event, payload)
            }
        }
        $crate::webhooks_bindings::export_webhooks!($plugin with_types_in $crate::webhooks_bindings);
    };
}

#[cfg(not(feature = "webhooks"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_webhooks {
    ($plugin:ident) => {};
}
