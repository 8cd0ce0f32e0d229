//! A Graph API stand-in that reads each request whole and then closes the
//! connection without answering: the sender cannot know whether the message
//! was accepted. Used to check that campaign messages are never sent twice
//! when the outcome of a send is unknown.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The running server; dropping it stops accepting.
pub struct ResetServer {
    base_url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ResetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ResetServer {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> ResetServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = Arc::clone(&bodies);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    if let Some(body) = read_request(&mut conn).await {
                        seen.lock().unwrap().push(body);
                    }
                    // Close without a response, as a connection reset after
                    // the request was written looks to the client.
                    let _ = conn.shutdown().await;
                });
            }
        });
        ResetServer {
            base_url,
            bodies,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, to use as `api_base`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The JSON bodies of every request read so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body; its JSON body.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return serde_json::from_slice(&buf[end + 4..end + 4 + length]).ok();
        }
    }
}
