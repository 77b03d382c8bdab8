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
    wit_bindgen::generate!({ path: "../wit", world: "host-imports", generate_all });
}

#[cfg(feature = "cards")]
#[doc(hidden)]
pub mod cards_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "export-cards",
        with: { "greenroom:plugin/types@0.1.0": crate::bindings::greenroom::plugin::types },
        pub_export_macro: true,
        export_macro_name: "export_cards",
        default_bindings_module: "greenroom_plugin_sdk::cards_bindings",
    });
}

pub mod card;
pub mod host;

pub use bindings::greenroom::plugin::types::{
    Badge, Card, Cell, Entity, Fact, FactValue, Field, Link, Node, PluginError, Progress, Table,
    Tone,
};
pub use card::CardBuilder;

/// The version of the plugin contract this SDK builds against.
pub const WIT_VERSION: &str = "0.1.0";

// Lets the host (and `greenroom plugin inspect`) tell which SDK built a plugin.
#[used]
#[unsafe(link_section = "greenroom:sdk")]
static SDK_VERSION: [u8; 5] = *b"0.1.0";

/// What a plugin does. Every method has a default, so adding one to the
/// contract never breaks a plugin; override what you implement and enable
/// its cargo feature.
pub trait Plugin {
    /// Cards for an entity's page.
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let _ = entity;
        Err(PluginError::NotApplicable)
    }
}

/// Exports the interfaces enabled by cargo features for `$plugin`.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ident) => {
        $crate::__export_cards!($plugin);
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
