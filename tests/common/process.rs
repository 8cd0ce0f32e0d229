//! The real `balas` binary as a child process: a config file written for the
//! test, `serve` on a free port, readiness, `kill -9`, SIGTERM, and `/metrics`
//! scraping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::harness::{APP_SECRET, METRICS_TOKEN, PHONE_NUMBER_ID, VERIFY_TOKEN};

/// The `balas` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_balas");

/// Where the process keeps its state.
#[derive(Clone, Debug)]
pub enum ProcStore {
    /// The embedded store in this directory.
    Embedded(PathBuf),
    /// Redis at this URL.
    Redis(String),
    /// A Redis Cluster through these seed URLs, under this key prefix.
    Cluster(Vec<String>, String),
}

impl ProcStore {
    /// Opens this store from the test, as the processes see it.
    pub async fn open(&self) -> balas::store::Store {
        use balas::store::Location;
        let backend = match self {
            ProcStore::Embedded(d) => {
                balas::store::open_backend(Location::Embedded(d), "balas").await
            }
            ProcStore::Redis(url) => balas::store::open_backend(Location::Redis(url), "proc").await,
            ProcStore::Cluster(nodes, prefix) => {
                balas::store::open_backend(Location::RedisCluster(nodes), prefix).await
            }
        }
        .expect("store opens");
        balas::store::Store::new(backend, std::sync::Arc::new(balas::clock::SystemClock))
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a config for `serve` into `dir`: WhatsApp signed and sending to
/// `mock_base`, Instagram off, fast polling and the default lease (crash tests
/// measure recovery with what deployments run). Returns its path.
pub fn write_config(
    dir: &Path,
    name: &str,
    store: &ProcStore,
    mock_base: &str,
    port: u16,
) -> PathBuf {
    let intents = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let store_section = match store {
        ProcStore::Embedded(d) => format!("data_dir = {:?}", d.display().to_string()),
        // data_dir still holds the media store's files.
        ProcStore::Redis(url) => format!(
            "redis_url = {url:?}\nkey_prefix = \"proc\"\ndata_dir = {:?}",
            dir.join("data").display().to_string()
        ),
        ProcStore::Cluster(nodes, prefix) => format!(
            "redis_cluster_nodes = {nodes:?}\nkey_prefix = {prefix:?}\ndata_dir = {:?}",
            dir.join("data").display().to_string()
        ),
    };
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
metrics_token = "{METRICS_TOKEN}"

[store]
{store_section}

[intents]
path = {intents:?}

[whatsapp]
enabled = true
verify_token = "{VERIFY_TOKEN}"
app_secret = "{APP_SECRET}"
access_token = "graph-token"
phone_number_id = "{PHONE_NUMBER_ID}"
api_base = "{mock_base}"

[instagram]
enabled = false

[workers]
poll_interval = "20ms"
"#,
        intents = intents.display().to_string(),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `balas serve`.
pub struct BalasProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr (logs), for failure messages.
    pub log: PathBuf,
}

impl BalasProcess {
    /// Starts `balas serve --config <config>` listening on `port`; logs go to
    /// `<config>.log` (at `warn,balas=info`, or `BALAS_TEST_LOG` when set, e.g.
    /// `BALAS_TEST_LOG=balas=debug` to see a failing run's sends).
    pub fn spawn(config: &Path, port: u16) -> BalasProcess {
        let log = config.with_extension(format!("{}.log", fastrand::u32(..)));
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("BALAS_TEST_LOG").unwrap_or_else(|_| "warn,balas=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("balas starts");
        BalasProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The process's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 30 s) until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "balas exited before it was ready: {status}\n{}",
                    self.logs()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("balas not ready within 30 s\n{}", self.logs());
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits (up to `timeout`) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "balas did not exit within {timeout:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `/metrics` page.
    pub async fn metrics(&self, http: &reqwest::Client) -> String {
        let r = http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics");
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }
}

impl Drop for BalasProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first sample of `metric` whose labels contain all of `labels`
/// (e.g. `queue="inbound"`), from a Prometheus text page.
pub fn sample(page: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A running command's outcome.
pub struct Finished {
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `balas ARGS` from the repository root and waits for it.
pub fn run(args: &[&str]) -> Finished {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("balas runs");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `balas ARGS` from the repository root with extra environment
/// variables and, when given, `stdin` as its standard input.
pub fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Finished {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("balas runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("balas finishes");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
