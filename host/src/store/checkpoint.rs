//! Checkpoints the write-ahead log on a thread of its own.
//!
//! A checkpoint copies committed pages from the WAL into the database file
//! and waits for the disk (fsync) twice. SQLite's default runs it inside
//! the commit that crosses 1,000 pages, so the writer, and every write
//! queued behind it, waited for the disk: half of a 100,000-entity ingest
//! through the API (60 s against 29 s with syncing off, `cargo xtask bench
//! catalog --part backstage`). Here the writer never checkpoints; this
//! thread does, on its own connection, without blocking readers or the
//! writer (`PASSIVE`). Durability is unchanged: WAL mode with
//! `synchronous = NORMAL` keeps every commit through a process crash.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::OpenFlags;

use super::{StoreError, open_connection};

/// A WAL past this size is restarted before a refresh begins
/// ([`restart_large_wal`]).
const RESTART_PAST: u64 = 64 << 20;

/// Checkpoints the WAL at `path` (the database's) on the writer's own
/// connection, waiting for readers to leave it, when it has grown past
/// [`RESTART_PAST`]: the next write then starts the log from its
/// beginning. The thread's passive checkpoints cannot: a restart needs
/// every frame copied back when a transaction begins, and refreshes that
/// follow one another begin before the thread has caught up. The log
/// then grew past 900 MB in a 100,000-entity ingest, and every page read
/// searched its index, one hash table per 4,096 frames. Called only
/// between transactions; a failure (a reader slower than the busy
/// timeout) leaves the log as it is.
pub(super) fn restart_large_wal(conn: &rusqlite::Connection, path: &Path) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).map_or(0, |m| m.len()) <= RESTART_PAST {
        return;
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(RESTART)") {
        tracing::debug!(error = %e, "cannot restart the store's write-ahead log");
    }
}

/// How often the WAL's size is looked at.
const EVERY: Duration = Duration::from_millis(100);

/// A WAL past this size is checkpointed.
const WAL_LIMIT: u64 = 1 << 20;

pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = open_connection(path, OpenFlags::default())?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let (lock, wake) = &*signal;
                let mut last_error: Option<String> = None;
                loop {
                    let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    let (stopped, _) = wake
                        .wait_timeout_while(stopped, EVERY, |s| !*s)
                        .unwrap_or_else(|p| p.into_inner());
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if std::fs::metadata(&wal).map_or(0, |m| m.len()) <= WAL_LIMIT {
                        continue;
                    }
                    // Said once per new trouble (a full disk would
                    // otherwise log ten times a second).
                    match conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        Ok(()) => last_error = None,
                        Err(e) => {
                            let text = e.to_string();
                            if last_error.as_deref() != Some(&text) {
                                tracing::warn!(error = %text, "cannot checkpoint the store's write-ahead log");
                                last_error = Some(text);
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
