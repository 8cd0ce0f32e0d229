//! A throwaway S3-compatible server per test: moto's standalone server
//! (`moto_server`, from PyPI) on a free loopback port, killed on drop.
//!
//! `./scripts/test` installs it into `target/test-tools/moto` (a Python venv,
//! pinned by `tests/s3/requirements.txt`); `BALAS_MOTO_SERVER` may point at
//! another `moto_server`, and one on `PATH` is used last.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use balas::config::{MediaBackendKind, MediaConfig, Secret};

/// Access key the tests sign with (moto accepts any).
pub const ACCESS_KEY: &str = "balas-test-key";
/// Secret key the tests sign with.
pub const SECRET_KEY: &str = "balas-test-secret";

/// A running S3-compatible server owned by a test.
pub struct S3Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BALAS_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/moto/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "moto_server (the S3-compatible test server) not found: run ./scripts/test, which installs it, or \
         python3 -m venv target/test-tools/moto && target/test-tools/moto/bin/pip install -r tests/s3/requirements.txt"
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Sends one bodiless HTTP/1.1 request and returns the status code.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl S3Server {
    /// Starts a server and waits (up to 60 s: Python starts slowly on a busy
    /// machine) until it answers.
    pub fn start() -> S3Server {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temp dir for moto");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
        let port = free_port();
        let child = Command::new(&binary)
            .arg("-H")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut server = S3Server { child, port, dir };
        server.wait_ready();
        server
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default();
        text.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_status(self.port, "GET", "/moto-api/") == Some(200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server on port {} did not answer within 60 s:\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (`PUT /{name}`).
    pub fn create_bucket(&self, name: &str) {
        let status = http_status(self.port, "PUT", &format!("/{name}"));
        assert_eq!(
            status,
            Some(200),
            "creating bucket {name}:\n{}",
            self.log_tail()
        );
    }

    /// A `[media]` section for the `s3` backend on this server, bucket `bucket`
    /// (created here).
    pub fn media_config(&self, bucket: &str) -> MediaConfig {
        self.create_bucket(bucket);
        MediaConfig {
            backend: MediaBackendKind::S3,
            bucket: bucket.to_string(),
            endpoint: self.endpoint(),
            region: "us-east-1".into(),
            access_key_id: Some(Secret::new(ACCESS_KEY)),
            secret_access_key: Some(Secret::new(SECRET_KEY)),
            ..MediaConfig::default()
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
