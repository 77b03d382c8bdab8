//! Watching a folder for files that changed, acting once each has settled:
//! a file being copied fires an event for every write, and a large plugin
//! takes many.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often a file being written is looked at again.
const SETTLE_TICK: Duration = Duration::from_millis(50);
/// How long a file's size and time must stay the same before it is used.
const SETTLE: Duration = Duration::from_millis(300);

/// A file that changed and is not acted on yet.
struct Settling {
    seen: Option<(u64, Option<SystemTime>)>,
    since: Instant,
    /// Its writer closed it, or it was renamed into place: it is whole.
    complete: bool,
}

impl Settling {
    fn new() -> Settling {
        Settling {
            seen: None,
            since: Instant::now(),
            complete: false,
        }
    }

    /// `None` when the file is gone, `Some(true)` once it is whole: closed
    /// by its writer or renamed into place, or else the same for
    /// [`SETTLE`].
    fn settled(&mut self, path: &Path) -> Option<bool> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        if self.complete {
            return Some(true);
        }
        let now = (meta.len(), meta.modified().ok());
        if self.seen != Some(now) {
            self.seen = Some(now);
            self.since = Instant::now();
            return Some(false);
        }
        Some(self.since.elapsed() >= SETTLE)
    }
}

/// Watches `dir` (not its subfolders) on a thread named `thread`: each
/// changed file that is `wanted` is handed to `act` once, with whether it
/// still exists, after its size and time have stayed the same for 300 ms.
/// The thread ends when `act` returns false or the watcher is dropped.
pub fn settled_files(
    dir: &Path,
    thread: &str,
    wanted: impl Fn(&Path) -> bool + Send + 'static,
    mut act: impl FnMut(&Path, bool) -> bool + Send + 'static,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    let thread = thread.to_string();
    std::thread::Builder::new()
        .name(thread.clone())
        .spawn(move || {
            let mut settling: BTreeMap<PathBuf, Settling> = BTreeMap::new();
            loop {
                let wait = if settling.is_empty() {
                    Duration::from_secs(3600)
                } else {
                    SETTLE_TICK
                };
                match rx.recv_timeout(wait) {
                    Ok(first) => {
                        // Take every event already queued, then look.
                        for event in std::iter::once(first).chain(rx.try_iter()) {
                            match event {
                                Ok(event) => note(&mut settling, event, &wanted),
                                Err(e) => tracing::warn!(error = %e, "watching {thread}"),
                            }
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let mut going = true;
                settling.retain(|path, state| match state.settled(path) {
                    Some(false) => true,
                    Some(true) => {
                        going &= act(path, true);
                        false
                    }
                    None => {
                        going &= act(path, false);
                        false
                    }
                });
                if !going {
                    return;
                }
            }
        })?;
    Ok(watcher)
}

/// Records what `event` says of the wanted files it names.
fn note(
    settling: &mut BTreeMap<PathBuf, Settling>,
    event: notify::Event,
    wanted: &impl Fn(&Path) -> bool,
) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    let whole = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(_)) => true,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => false,
        // Opening or reading a file (the host loading it) changes nothing.
        _ => return,
    };
    for path in event.paths.into_iter().filter(|p| wanted(p)) {
        settling.entry(path).or_insert_with(Settling::new).complete = whole;
    }
}
