//! Search indexing runs below the priority of requests and catalog
//! writes. On two cores, indexing each group of a 100,000-entity import
//! as it committed took most of a core (tantivy's indexing thread and the
//! reads behind it) from the import's writer, and that writer is the one
//! thing every other write waits for. Niced threads take only what the
//! others leave: the index catches up once the import is done, and an
//! idle portal indexes a change as fast as before.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A thread of its own, at low priority, that runs jobs one at a time.
pub struct Background {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Background {
    pub fn start(name: &str) -> std::io::Result<Background> {
        let (send, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                lower_priority();
                for job in jobs {
                    job();
                }
            })?;
        Ok(Background {
            jobs: Mutex::new(send),
        })
    }

    /// Runs `job` on the thread; an error when it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job));
            let _ = done.send(outcome.map_err(|_| "the background job panicked".to_string()));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| "the background thread is gone".to_string())?;
        answer
            .await
            .map_err(|_| "the background thread is gone".to_string())?
    }
}

/// Lowers the calling thread's priority (nice 10); the threads it starts
/// inherit it. Linux gives each thread its own nice value; elsewhere this
/// lowers the whole process's, so it is done only on Linux.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `who` 0 is this thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
