//! Built against `greenroom:plugin@0.9.0`, a contract version this host
//! does not speak: the host must refuse it with a clear error.

wit_bindgen::generate!({
    inline: r#"
        package greenroom:plugin@0.9.0;

        interface cards {
            cards: func(entity-ref: string) -> list<string>;
        }

        world next-contract {
            export cards;
        }
    "#,
    world: "next-contract",
});

struct Future;

impl exports::greenroom::plugin::cards::Guest for Future {
    fn cards(entity_ref: String) -> Vec<String> {
        vec![entity_ref]
    }
}

export!(Future);

#[used]
#[unsafe(link_section = "greenroom:manifest")]
static MANIFEST: [u8; 54] = *br#"{"id": "future", "name": "Future", "version": "9.0.0"}"#;
