//! A PostgreSQL server of the tests' own. A file of the tests crate that
//! the host's command-line tests include too (`host/tests/cli.rs`), so it
//! needs only `std`, `tempfile` and `postgres`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A PostgreSQL server of the tests' own: Debian's binaries (installed by
/// `cargo xtask test`), run as the `postgres` user when the tests run as
/// root, data in a temporary folder, on a loopback port. The tests running
/// at one time share it; it stops when the last lets go.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The tests run as root, so the server's programs run as `postgres`.
    as_root: bool,
    databases: std::sync::atomic::AtomicUsize,
}

static PG_SERVER: Mutex<std::sync::Weak<PgServer>> = Mutex::new(std::sync::Weak::new());

/// The running test server, started when none is.
pub fn pg_server() -> Arc<PgServer> {
    let mut shared = PG_SERVER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(PgServer::start());
    *shared = Arc::downgrade(&server);
    server
}

impl PgServer {
    fn start() -> PgServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|b| b.join("initdb").is_file())
                    .max()
            })
            .expect(
                "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): \
                 `cargo xtask test` installs Debian's postgresql, or run `apt-get install postgresql`",
            );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let as_root = run_output("id", &["-u"]).trim() == "0";
        if as_root {
            let uid: u32 = run_output("id", &["-u", "postgres"])
                .trim()
                .parse()
                .unwrap();
            let gid: u32 = run_output("id", &["-g", "postgres"])
                .trim()
                .parse()
                .unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PgServer {
            dir,
            bin,
            port,
            as_root,
            databases: Default::default(),
        };
        let data = data.to_string_lossy().to_string();
        server.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Every test opens its own pools, many at once: more connections
        // than the default 100, or one test's open fails under load.
        let options = format!(
            "-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=400"
        );
        let log = format!("{data}/server.log");
        server.pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
        );
        server
    }

    /// One of the server's programs, to be run as `postgres` when root.
    fn command(&self, program: &str) -> std::process::Command {
        let program = self.bin.join(program);
        let mut command = if self.as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        command.current_dir(self.dir.path());
        command
    }

    /// Runs one of the server's programs; it must succeed.
    fn pg(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database on this server: its URL.
    pub fn database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("greenroom_test_{n}");
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        // On a thread of its own: the blocking client refuses to run on a
        // tokio worker, where portal tests ask for databases.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
            })
            .join()
            .unwrap()
        });
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Not asserted: a panic while unwinding would abort the tests.
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn run_output(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}
