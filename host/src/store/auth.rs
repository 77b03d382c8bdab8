//! Identity records: API tokens (only their hashes), the append-only audit
//! trail, and who a signed-in person is in the catalog (their User and
//! every group they belong to).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Access, Sqlite, StoreError, now_ms};

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// A person's own token: theirs (`user:default/jane`).
    pub owner: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    /// A personal token acts for this person (`user:default/jane`), never
    /// beyond what they may do themselves.
    pub person: Option<String>,
}

impl TokenRecord {
    /// Usable now: neither revoked nor expired.
    pub fn live(&self, now: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| e > now)
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    /// `user:default/jane`, `token:ci`, `anonymous`.
    pub actor: String,
    /// The route: `POST /api/plugins/{id}/grants`, `sign-in`.
    pub action: String,
    /// What it was done to: the request path, a token id.
    pub target: String,
    /// The client's address.
    pub address: String,
    /// `allowed`, `denied` or `error`.
    pub outcome: String,
    pub status: u16,
}

/// Which audit lines to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub actor: Option<String>,
    /// Lines whose target contains this.
    pub target: Option<String>,
    pub limit: usize,
}

const TOKEN_COLUMNS: &str =
    "id, name, scopes, owner, created_by, created_ms, expires_ms, revoked_ms, person";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let scopes: String = r.get(2)?;
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        owner: r.get(3)?,
        created_by: r.get(4)?,
        created_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        revoked_ms: r.get(7)?,
        person: r.get(8)?,
    })
}

/// How long a session read from the store is reused (see
/// `Sqlite::session_by_hash`).
pub const SESSION_CACHE_MS: i64 = 5_000;

/// A signed-in person's session, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: String,
    /// What they signed in as (email, or the provider's user name).
    pub login: String,
    /// The provider's subject (`sub`).
    pub subject: String,
    pub user_ref: Option<String>,
    /// Where they signed in from.
    pub address: String,
    pub created_ms: i64,
    pub seen_ms: i64,
    /// The absolute end.
    pub expires_ms: i64,
    /// Signed out or revoked.
    pub ended_ms: Option<i64>,
    /// The session's anti-forgery token, sent back on every write.
    #[serde(skip)]
    pub csrf: String,
}

impl SessionRecord {
    /// Usable now: not ended, not past its end, not idle for `idle_ms`.
    pub fn live(&self, now: i64, idle_ms: i64) -> bool {
        self.ended_ms.is_none() && self.expires_ms > now && self.seen_ms + idle_ms > now
    }
}

const SESSION_COLUMNS: &str =
    "id, login, subject, user_ref, address, created_ms, seen_ms, expires_ms, ended_ms, csrf";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        login: r.get(1)?,
        subject: r.get(2)?,
        user_ref: r.get(3)?,
        address: r.get(4)?,
        created_ms: r.get(5)?,
        seen_ms: r.get(6)?,
        expires_ms: r.get(7)?,
        ended_ms: r.get(8)?,
        csrf: r.get(9)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        address: r.get(5)?,
        outcome: r.get(6)?,
        status: r.get::<_, i64>(7)? as u16,
    })
}

impl Access for Sqlite {
    fn token_create(&self, token: &TokenRecord, hash: &[u8]) -> Result<(), StoreError> {
        let scopes =
            serde_json::to_string(&token.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.writer().execute(
            "INSERT INTO api_tokens (id, name, hash, scopes, owner, created_by, created_ms, expires_ms, revoked_ms, person)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)",
            params![
                token.id,
                token.name,
                hash,
                scopes,
                token.owner,
                token.created_by,
                token.created_ms,
                token.expires_ms,
                token.person
            ],
        )?;
        self.bump();
        Ok(())
    }

    fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"
                ))?
                .query_row([hash], token_row)
                .optional()?)
        })
    }

    fn tokens(&self, person: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ?1 IS NULL OR person = ?1 ORDER BY created_ms DESC, id"
            ))?;
            let rows = stmt.query_map([person], token_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?1"
                ))?
                .query_row([id], token_row)
                .optional()?)
        })
    }

    fn token_revoke(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.writer().execute(
            "UPDATE api_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
            params![id, now_ms()],
        )?;
        Ok(n == 1)
    }

    fn session_create(&self, s: &SessionRecord, hash: &[u8]) -> Result<(), StoreError> {
        self.writer().execute(
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                s.id,
                s.login,
                s.subject,
                s.user_ref,
                s.address,
                s.created_ms,
                s.seen_ms,
                s.expires_ms,
                s.ended_ms,
                s.csrf,
                hash
            ],
        )?;
        Ok(())
    }

    fn session_by_hash(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let now = now_ms();
        if let Some((at, s)) = self
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            && now - *at < SESSION_CACHE_MS
        {
            return Ok(Some(s.clone()));
        }
        let found = self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = ?1"
                ))?
                .query_row([hash], session_row)
                .optional()?)
        })?;
        let mut cache = self.session_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 100_000 {
            cache.clear();
        }
        match &found {
            Some(s) => cache.insert(hash.to_vec(), (now, s.clone())),
            None => cache.remove(hash),
        };
        Ok(found)
    }

    fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
                ))?
                .query_row([id], session_row)
                .optional()?)
        })
    }

    fn session_seen(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.writer()
            .prepare_cached("UPDATE sessions SET seen_ms = ?2 WHERE id = ?1 AND ended_ms IS NULL")?
            .execute(params![id, now])?;
        self.session_cached(id, |s| s.seen_ms = now);
        Ok(())
    }

    fn session_end(&self, id: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let n = self.writer().execute(
            "UPDATE sessions SET ended_ms = ?2 WHERE id = ?1 AND ended_ms IS NULL",
            params![id, now],
        )?;
        // A session ended before keeps the time it ended at.
        if n == 1 {
            self.session_cached(id, |s| s.ended_ms = Some(now));
        }
        Ok(n == 1)
    }

    fn sessions(&self, now: i64, user_ref: Option<&str>) -> Result<Vec<SessionRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions
                 WHERE ended_ms IS NULL AND expires_ms > ?1 AND (?2 IS NULL OR user_ref = ?2)
                 ORDER BY created_ms DESC, id LIMIT 10000"
            ))?;
            let rows = stmt.query_map(params![now, user_ref], session_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn session_count(&self, now: i64) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT count(*) FROM sessions WHERE ended_ms IS NULL AND expires_ms > ?1",
                )?
                .query_row([now], |r| r.get(0))?)
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.writer()
            .prepare_cached(
                "INSERT INTO audit (at_ms, actor, action, target, address, outcome, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                entry.at_ms,
                entry.actor,
                entry.action,
                entry.target,
                entry.address,
                entry.outcome,
                entry.status
            ])?;
        Ok(())
    }

    fn audit_lines(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at_ms, actor, action, target, address, outcome, status FROM audit
                 WHERE at_ms >= ?1 AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR instr(target, ?3) > 0)
                 ORDER BY seq LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    q.since_ms.unwrap_or(0),
                    q.actor,
                    q.target,
                    q.limit.clamp(1, 100_000) as i64
                ],
                audit_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl Sqlite {
    /// Applies `change` to the cached copies of session `id`.
    fn session_cached(&self, id: &str, change: impl Fn(&mut SessionRecord)) {
        let mut cache = self.session_cache.lock().unwrap_or_else(|p| p.into_inner());
        for (_, s) in cache.values_mut().filter(|(_, s)| s.id == id) {
            change(s);
        }
    }

    pub(super) fn groups_of_uncached(&self, user_ref: &str) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "WITH RECURSIVE g(ref) AS (
                    SELECT target_ref FROM relations WHERE source_ref = ?1 AND type = 'memberOf'
                    UNION SELECT source_ref FROM relations WHERE target_ref = ?1 AND type = 'hasMember'
                    UNION SELECT r.target_ref FROM relations r JOIN g ON r.source_ref = g.ref AND r.type = 'childOf'
                    UNION SELECT r.source_ref FROM relations r JOIN g ON r.target_ref = g.ref AND r.type = 'parentOf'
                 ) SELECT ref FROM g ORDER BY ref",
            )?;
            let rows = stmt.query_map([user_ref], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_trail_is_append_only_and_tokens_keep_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let entry = AuditEntry {
            seq: 0,
            at_ms: 5,
            actor: "token:ci".into(),
            action: "POST /api/facts".into(),
            target: "/api/facts".into(),
            address: "127.0.0.1".into(),
            outcome: "allowed".into(),
            status: 200,
        };
        store.audit(&entry).unwrap();
        let lines = store
            .audit_lines(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(lines, vec![AuditEntry { seq: 1, ..entry }]);
        // Neither changed nor removed, even by SQL.
        let conn = rusqlite::Connection::open(dir.path().join("g.db")).unwrap();
        let err = conn
            .execute("UPDATE audit SET actor = 'someone else'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert!(conn.execute("DELETE FROM audit", []).is_err());

        let token = TokenRecord {
            id: "t1".into(),
            name: "ci".into(),
            scopes: vec!["facts:write".into()],
            owner: None,
            created_by: "cli".into(),
            created_ms: 1,
            expires_ms: Some(10),
            revoked_ms: None,
            person: None,
        };
        store.token_create(&token, b"hash-of-secret").unwrap();
        assert_eq!(
            store.token_by_hash(b"hash-of-secret").unwrap(),
            Some(token.clone())
        );
        assert!(token.live(9) && !token.live(10));
        assert!(store.token_revoke("t1").unwrap());
        assert!(!store.token_revoke("t1").unwrap());
        assert!(!store.token("t1").unwrap().unwrap().live(0));
    }
}
