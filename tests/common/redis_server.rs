//! A throwaway `redis-server` per test: free loopback port, its own temp dir,
//! append-only file with fsync on every write, killed on drop.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running `redis-server` owned by a test.
pub struct RedisServer {
    child: Mutex<Child>,
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("redis-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "redis-server not found: install it with `sudo apt-get install -y redis-server` (or run ./scripts/test, which does it)"
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local addr").port()
}

fn spawn(binary: &Path, port: u16, dir: &Path) -> Child {
    Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--save")
        .arg("")
        .arg("--appendonly")
        .arg("yes")
        .arg("--appendfsync")
        .arg("always")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()))
}

/// True when the server at `port` answers PING.
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    /// Starts a server and waits (up to ~5 s) until it answers PING.
    pub fn start() -> RedisServer {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let port = free_port();
        let child = spawn(&binary, port, dir.path());
        let server = RedisServer {
            child: Mutex::new(child),
            port,
            dir,
            binary,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if answers_ping(self.port) {
                return;
            }
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 5 s",
            self.port
        );
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (append-only file lives here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL and starts it again on the same port and
    /// directory; with `appendfsync always` nothing acknowledged is lost.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Kills the server with SIGKILL (a store outage) and waits until it is gone.
    /// Works through a shared reference, so a server shared by a harness (in an
    /// `Arc`) can be taken down; [`RedisServer::start_again`] brings it back.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and directory after
    /// [`RedisServer::kill`], and waits until it answers PING.
    pub fn start_again(&self) {
        {
            let mut child = self.child.lock().unwrap();
            if matches!(child.try_wait(), Ok(None)) {
                return; // still running
            }
            *child = spawn(&self.binary, self.port, self.dir.path());
        }
        self.wait_ready();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
