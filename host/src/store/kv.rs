//! Plugin state: each plugin's private key/value store (with expiry and a
//! byte quota) and the grants an administrator gave it.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{PluginState, Sqlite, StoreError, corrupt, now_ms};
use crate::config::SecretGrant;

/// What an administrator allowed a plugin, persisted across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredGrants {
    pub hosts: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
    /// The origins a secret is bound to, where given; a secret not listed
    /// here is bound to the plugin's one granted origin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_hosts: BTreeMap<String, Vec<String>>,
    pub disabled: bool,
}

impl StoredGrants {
    /// Adds secrets as written in greenroom.toml or an API request.
    pub fn add_secrets(&mut self, grants: impl IntoIterator<Item = SecretGrant>) {
        for g in grants {
            if let Some(hosts) = g.hosts() {
                self.secret_hosts
                    .entry(g.name().to_string())
                    .or_default()
                    .extend(hosts.iter().cloned());
            }
            if !self.secrets.iter().any(|s| s == g.name()) {
                self.secrets.push(g.name().to_string());
            }
        }
    }

    /// The secrets in their written form, for storing.
    fn secret_grants(&self) -> Vec<SecretGrant> {
        self.secrets
            .iter()
            .map(|name| match self.secret_hosts.get(name) {
                Some(hosts) => SecretGrant::bound(name, hosts.clone()),
                None => SecretGrant::Name(name.clone()),
            })
            .collect()
    }

    /// The hosts and the secrets as every backend stores them: JSON text.
    pub(super) fn columns(&self) -> Result<(String, String), StoreError> {
        let hosts = serde_json::to_string(&self.hosts).map_err(corrupt)?;
        let secrets = serde_json::to_string(&self.secret_grants()).map_err(corrupt)?;
        Ok((hosts, secrets))
    }

    /// Grants as stored (see [`StoredGrants::columns`]).
    pub(super) fn from_columns(
        hosts: &str,
        secrets: &str,
        disabled: bool,
    ) -> Result<StoredGrants, StoreError> {
        let mut grants = StoredGrants {
            hosts: serde_json::from_str(hosts).map_err(corrupt)?,
            disabled,
            ..StoredGrants::default()
        };
        grants.add_secrets(serde_json::from_str::<Vec<SecretGrant>>(secrets).map_err(corrupt)?);
        Ok(grants)
    }
}

/// Whether writing `value` under `key` keeps a plugin within `quota`
/// bytes (keys and values), when its other keys hold `used`.
pub(super) fn within_quota(used: i64, key: &str, value: &[u8], quota: u64) -> bool {
    used.max(0) as u64 + (key.len() + value.len()) as u64 <= quota
}

impl PluginState for Sqlite {
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = now_ms();
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT value FROM plugin_kv WHERE plugin_id = ?1 AND key = ?2 AND (expires_ms IS NULL OR expires_ms > ?3)",
                )?
                .query_row(params![plugin, key, now], |r| r.get(0))
                .optional()?)
        })
    }

    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u32>,
        quota: u64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM plugin_kv WHERE plugin_id = ?1 AND expires_ms <= ?2",
            params![plugin, now],
        )?;
        let used: i64 = tx.query_row(
            // Bytes, not characters: SQLite's length() of TEXT counts
            // characters, of a BLOB bytes.
            "SELECT COALESCE(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) FROM plugin_kv WHERE plugin_id = ?1 AND key <> ?2",
            params![plugin, key],
            |r| r.get(0),
        )?;
        if !within_quota(used, key, value, quota) {
            return Ok(false);
        }
        let expires = ttl_seconds.map(|t| now + i64::from(t) * 1000);
        tx.execute(
            "INSERT OR REPLACE INTO plugin_kv (plugin_id, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            params![plugin, key, value, expires],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        self.writer().execute(
            "DELETE FROM plugin_kv WHERE plugin_id = ?1 AND key = ?2",
            params![plugin, key],
        )?;
        Ok(())
    }

    fn grants(&self, plugin: &str) -> Result<Option<StoredGrants>, StoreError> {
        self.read(|conn| {
            let row: Option<(String, String, bool)> = conn
                .prepare_cached(
                    "SELECT hosts, secrets, disabled FROM plugin_grants WHERE plugin_id = ?1",
                )?
                .query_row([plugin], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            row.map(|(h, s, disabled)| StoredGrants::from_columns(&h, &s, disabled))
                .transpose()
        })
    }

    fn set_grants(&self, plugin: &str, grants: &StoredGrants) -> Result<(), StoreError> {
        let (hosts, secrets) = grants.columns()?;
        self.writer().execute(
            "INSERT OR REPLACE INTO plugin_grants (plugin_id, hosts, secrets, disabled) VALUES (?1, ?2, ?3, ?4)",
            params![plugin, hosts, secrets, grants.disabled],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_is_private_expires_and_keeps_a_quota() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        assert!(store.kv_set("a", "k", b"hello", None, 100).unwrap());
        assert_eq!(
            store.kv_get("a", "k").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            store.kv_get("b", "k").unwrap(),
            None,
            "another plugin sees nothing"
        );
        assert!(
            !store.kv_set("a", "big", &[0; 200], None, 100).unwrap(),
            "over quota"
        );
        assert!(
            store.kv_set("a", "k", &[1; 90], None, 100).unwrap(),
            "replacing counts only the new value"
        );
        assert!(store.kv_set("a", "gone", b"x", Some(0), 1000).unwrap());
        assert_eq!(store.kv_get("a", "gone").unwrap(), None, "expired");
        store.kv_delete("a", "k").unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap(), None);

        // The quota counts bytes: a key of 40 two-byte characters is 80
        // bytes, so a second one does not fit in 100.
        let wide = "é".repeat(40);
        assert!(store.kv_set("c", &wide, b"", None, 100).unwrap());
        assert!(
            !store
                .kv_set("c", &format!("{wide}2"), b"", None, 100)
                .unwrap(),
            "keys counted in bytes"
        );

        assert_eq!(store.grants("a").unwrap(), None);
        let mut g = StoredGrants {
            hosts: vec!["https://api.github.com".into()],
            ..StoredGrants::default()
        };
        g.add_secrets([
            SecretGrant::Name("GITHUB_TOKEN".into()),
            SecretGrant::bound("OTHER", vec!["https://x.example".into()]),
        ]);
        store.set_grants("a", &g).unwrap();
        assert_eq!(store.grants("a").unwrap(), Some(g));
    }
}
