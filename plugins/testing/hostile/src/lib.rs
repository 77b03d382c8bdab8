//! Misbehaves on purpose, chosen by the entity's name, so the containment
//! tests can check that the host survives each kind of misbehaviour:
//!
//! | entity name | what it does |
//! |---|---|
//! | `loop`, `loop-<n>` | spins forever |
//! | `alloc` | allocates and touches 1 GiB |
//! | `big` | returns a 100 MB card |
//! | `panic` | panics |
//! | `recurse` | recurses without end |
//! | `files` | reads `/etc/passwd` through WASI |
//! | `socket` | opens a TCP socket through WASI |
//! | `http-<n>` | fetches the URL in annotation `test/url` |
//! | `kv` | writes, reads and deletes its kv store, then overflows its quota |
//! | `catalog` | reads the catalog through the host |
//! | `source` | reads a file beside the entity, then tries to escape |
//! | `print` | logs through the host, writes to stdout and stderr |
//! | anything else | one small card |

use greenroom_plugin_sdk::{
    Card, CardBuilder, Entity, Plugin, PluginError, host, manifest, register_plugin,
};

manifest!(
    r#"{"id": "hostile", "name": "Hostile", "version": "0.1.0", "description": "Containment test plugin", "hosts": ["http://127.0.0.1:1"], "secrets": ["TEST_SECRET"]}"#
);

struct Hostile;

fn recurse(n: u64) -> u64 {
    let mut frame = [n; 64];
    std::hint::black_box(&mut frame);
    if n == u64::MAX {
        return 0;
    }
    let below = recurse(std::hint::black_box(n + 1));
    std::hint::black_box(&mut frame);
    below.wrapping_add(frame[(n % 64) as usize])
}

fn card(text: &str) -> Result<Vec<Card>, PluginError> {
    Ok(vec![
        CardBuilder::new("result", "Result").text(text).build(),
    ])
}

impl Plugin for Hostile {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        match entity.name.as_str() {
            name if name == "loop" || name.starts_with("loop-") => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut v = vec![0u8; 1 << 30];
                for i in (0..v.len()).step_by(4096) {
                    v[i] = 1;
                }
                card(&format!("{}", v.len()))
            }
            "big" => card(&"x".repeat(100 * 1024 * 1024)),
            "panic" => panic!("hostile plugin panics on purpose"),
            "recurse" => card(&recurse(std::hint::black_box(0)).to_string()),
            "files" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => card(&format!("READ: {text}")),
                Err(e) => card(&format!("file error: {e}")),
            },
            "socket" => match std::net::TcpStream::connect("127.0.0.1:7007") {
                Ok(_) => card("CONNECTED"),
                Err(e) => card(&format!("socket error: {e}")),
            },
            name if name.starts_with("http") => {
                let url = entity.annotation("test/url").unwrap_or_default();
                match host::get(&url, &[("Authorization", "Bearer {{secret:TEST_SECRET}}")]) {
                    Ok(r) => card(&format!(
                        "status {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    )),
                    Err(e) => card(&format!("http error: {e:?}")),
                }
            }
            "kv" => {
                host::kv_set("greeting", b"hello", None).map_err(PluginError::Internal)?;
                let read = host::kv_get("greeting").unwrap_or_default();
                host::kv_delete("greeting");
                let after = host::kv_get("greeting");
                let over = host::kv_set("huge", &vec![0u8; 2 * 1024 * 1024], None);
                card(&format!(
                    "read {}; after delete {after:?}; over quota: {over:?}",
                    String::from_utf8_lossy(&read)
                ))
            }
            "catalog" => {
                let team = host::entity("group:team-a")
                    .map(|e| e.entity_ref)
                    .unwrap_or_default();
                let names: Vec<String> = host::query("kind=component", 10)
                    .into_iter()
                    .map(|e| e.name)
                    .collect();
                card(&format!("team {team}; components {}", names.join(",")))
            }
            "source" => {
                let path = entity.annotation("test/read");
                let notes = host::read_file(&entity, path.as_deref().unwrap_or("notes.txt"));
                let escape = host::read_file(&entity, "../../../../etc/passwd");
                card(&format!("notes {notes:?}; escape {escape:?}"))
            }
            "print" => {
                host::log(host::Level::Warn, "via the log import");
                println!("to stdout from the plugin");
                eprintln!("to stderr from the plugin");
                card("printed")
            }
            _ => card("fine"),
        }
    }
}

register_plugin!(Hostile);
