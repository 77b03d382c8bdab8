//! The smallest useful plugin: greets the entity and names its owner.

use greenroom_plugin_sdk::{
    Card, CardBuilder, Entity, Plugin, PluginError, Tone, manifest, register_plugin,
};

manifest!(
    r#"{"id": "hello", "name": "Hello", "version": "0.1.0", "description": "Greets every entity and names its owner"}"#
);

struct Hello;

impl Plugin for Hello {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let value = entity.value();
        let owner = value["spec"]["owner"].as_str().unwrap_or("nobody");
        let card = CardBuilder::new("hello", "Hello")
            .heading(&format!("Hello, {}!", entity.name))
            .field("Owner", owner, None)
            .badge(&entity.kind, Tone::Info)
            .build();
        Ok(vec![card])
    }
}

register_plugin!(Hello);
