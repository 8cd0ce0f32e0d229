//! `balas report` and `balas broadcast …`: talk to a running server's API.
//!
//! These commands go through `/api/v1` rather than opening the store, so they
//! work the same with the embedded store (which only the server may open) and
//! with Redis, and they obey the same roles as the console.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::broadcast::audience::{self, Recipient};
use crate::channels::Channel;

/// Where the server is and who is asking.
#[derive(Debug, Args)]
pub struct Remote {
    /// Base URL of a running `balas serve`.
    #[arg(long, env = "BALAS_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token (`balas users add --token`, or `POST /api/v1/users/{id}/tokens`).
    #[arg(long, env = "BALAS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `balas broadcast …`
#[derive(Debug, Subcommand)]
pub enum BroadcastAction {
    /// Create a broadcast from a campaign file (TOML; see docs/broadcasts.md).
    Create {
        /// The campaign file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Show progress with a live bar until it finishes (Ctrl-C to stop watching).
    Status {
        /// Broadcast id.
        id: String,
        /// Print once and exit.
        #[arg(long)]
        once: bool,
    },
    /// List broadcasts.
    List,
    /// Pause a broadcast.
    Pause {
        /// Broadcast id.
        id: String,
    },
    /// Resume a paused broadcast.
    Resume {
        /// Broadcast id.
        id: String,
    },
    /// Cancel a broadcast.
    Cancel {
        /// Broadcast id.
        id: String,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(remote: &Remote) -> Result<Self, String> {
        let token = remote.token.clone().ok_or(
            "no token: pass --token or set BALAS_TOKEN (issue one with `balas users add --token` or an admin's POST /api/v1/users/ID/tokens)",
        )?;
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())?,
            base: remote.server.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response, String> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            format!(
                "cannot reach {}: {e}; is `balas serve` running? (--server)",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(format!("{status}: {message}"))
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.call(method, path, body)
            .await?
            .json()
            .await
            .map_err(|e| format!("unexpected answer from the server: {e}"))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("balas: {message}");
    ExitCode::from(1)
}

/// `balas report`
pub fn report(
    remote: &Remote,
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
) -> ExitCode {
    let client = match Client::new(remote) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut query = Vec::new();
    for (k, v) in [("from", from), ("to", to), ("group_by", group_by)] {
        if let Some(v) = v {
            query.push(format!("{k}={v}"));
        }
    }
    let path = format!("/api/v1/reports/summary?{}", query.join("&"));
    match runtime().block_on(client.json(reqwest::Method::GET, &path, None)) {
        Ok(v) => {
            print!("{}", report_table(&v));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Renders a summary answer as a terminal table.
pub fn report_table(v: &Value) -> String {
    let mut rows = vec![v["total"].clone()];
    if let Some(groups) = v["groups"].as_array() {
        rows.extend(groups.iter().cloned());
    }
    let num = |x: &Value, suffix: &str| match x.as_f64() {
        Some(f) => format!("{f:.1}{suffix}"),
        None => "-".into(),
    };
    let dur = |x: &Value| match x.as_f64() {
        Some(s) if s >= 3600.0 => format!("{:.1}h", s / 3600.0),
        Some(s) if s >= 60.0 => format!("{:.1}m", s / 60.0),
        Some(s) => format!("{s:.0}s"),
        None => "-".into(),
    };
    let mut out = format!(
        "{:<14} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}\n",
        "group",
        "cases",
        "bot",
        "handoff",
        "resp%",
        "CSAT%",
        "CSAT",
        "NPS",
        "CES",
        "1st p50",
        "1st p90",
        "res p50",
        "res p90"
    );
    for r in rows {
        let rate = r["response_rate"].as_f64().map(|x| x * 100.0);
        out.push_str(&format!(
            "{:<14} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}\n",
            r["group"].as_str().unwrap_or("-"),
            r["cases"],
            r["bot_only"],
            r["handed_off"],
            rate.map_or("-".into(), |x| format!("{x:.0}%")),
            num(&r["csat_pct"], "%"),
            num(&r["csat_avg"], ""),
            num(&r["nps"], ""),
            num(&r["ces_avg"], ""),
            dur(&r["first_response"]["median_s"]),
            dur(&r["first_response"]["p90_s"]),
            dur(&r["resolution"]["median_s"]),
            dur(&r["resolution"]["p90_s"]),
        ));
    }
    // The service measures supervisors are judged by.
    out.push_str(&format!(
        "\n{:<14} {:>7} {:>8} {:>7} {:>8} {:>6} {:>6}\n",
        "group", "opened", "resolved", "resol%", "reopen%", "FCR%", "SLA%"
    ));
    let mut rows = vec![v["total"].clone()];
    if let Some(groups) = v["groups"].as_array() {
        rows.extend(groups.iter().cloned());
    }
    for r in rows {
        out.push_str(&format!(
            "{:<14} {:>7} {:>8} {:>7} {:>8} {:>6} {:>6}\n",
            r["group"].as_str().unwrap_or("-"),
            r["opened"],
            r["cases"],
            num(&r["resolution_rate_pct"], "%"),
            num(&r["reopen_rate_pct"], "%"),
            num(&r["first_contact_resolution_pct"], "%"),
            num(&r["sla_attainment_pct"], "%"),
        ));
    }
    out
}

/// `balas broadcast …`
pub fn broadcast(remote: &Remote, action: BroadcastAction) -> ExitCode {
    let client = match Client::new(remote) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let result = rt.block_on(async {
        match action {
            BroadcastAction::Create { file } => {
                let body = campaign_body(&file)?;
                let v = client
                    .json(reqwest::Method::POST, "/api/v1/broadcasts", Some(body))
                    .await?;
                println!(
                    "created broadcast {} ({}, {} recipients)",
                    v["id"].as_str().unwrap_or("?"),
                    v["status"].as_str().unwrap_or("?"),
                    v["counts"]["total"]
                );
                Ok(())
            }
            BroadcastAction::List => {
                let v = client
                    .json(reqwest::Method::GET, "/api/v1/broadcasts", None)
                    .await?;
                println!(
                    "{:<14} {:<10} {:<10} {:>7} {:>7} {:>7}  name",
                    "id", "channel", "status", "total", "sent", "failed"
                );
                for b in v["broadcasts"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{:<14} {:<10} {:<10} {:>7} {:>7} {:>7}  {}",
                        b["id"].as_str().unwrap_or(""),
                        b["channel"].as_str().unwrap_or(""),
                        b["status"].as_str().unwrap_or(""),
                        b["counts"]["total"],
                        b["counts"]["sent"].as_i64().unwrap_or(0)
                            + b["counts"]["delivered"].as_i64().unwrap_or(0)
                            + b["counts"]["read"].as_i64().unwrap_or(0),
                        b["counts"]["failed"],
                        b["name"].as_str().unwrap_or(""),
                    );
                }
                Ok(())
            }
            BroadcastAction::Status { id, once } => loop {
                let v = client
                    .json(
                        reqwest::Method::GET,
                        &format!("/api/v1/broadcasts/{id}"),
                        None,
                    )
                    .await?;
                let line = progress_line(&v);
                let done = matches!(v["status"].as_str(), Some("completed" | "cancelled"))
                    && v["counts"]["pending"].as_i64() == Some(0);
                if once {
                    println!("{line}");
                    return Ok(());
                }
                print!("\r{line}");
                let _ = std::io::stdout().flush();
                if done {
                    println!();
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
            BroadcastAction::Pause { id } => change(&client, &id, "pause").await,
            BroadcastAction::Resume { id } => change(&client, &id, "resume").await,
            BroadcastAction::Cancel { id } => change(&client, &id, "cancel").await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn change(client: &Client, id: &str, what: &str) -> Result<(), String> {
    let v = client
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/broadcasts/{id}/{what}"),
            None,
        )
        .await?;
    println!("{}", progress_line(&v));
    Ok(())
}

/// One line with a progress bar and the counts.
pub fn progress_line(v: &Value) -> String {
    let c = &v["counts"];
    let n = |k: &str| c[k].as_i64().unwrap_or(0);
    let total = n("total").max(0);
    let done = total - n("pending");
    let width = 30;
    let filled = if total > 0 {
        (done * width / total) as usize
    } else {
        0
    };
    format!(
        "[{}{}] {:>3}% {} sent {} delivered {} read {} failed {} skipped {} / {}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled.min(width as usize)),
        if total > 0 { done * 100 / total } else { 0 },
        v["status"].as_str().unwrap_or("?"),
        n("sent") + n("delivered") + n("read"),
        n("delivered") + n("read"),
        n("read"),
        n("failed"),
        n("skipped"),
        total,
    )
}

/// Builds the API body from a campaign file; CSV audiences are read and checked
/// here with the server's own rules, so row errors name the file's lines.
pub fn campaign_body(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
    let channel = doc
        .get("channel")
        .and_then(|c| c.as_str())
        .and_then(Channel::parse)
        .ok_or_else(|| {
            format!(
                "{}: `channel` must be \"whatsapp\" or \"instagram\"",
                file.display()
            )
        })?;
    let mut body: Value = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
    if let Some(aud) = doc.get_mut("audience").and_then(|a| a.as_table_mut())
        && let Some(csv_path) = aud.remove("csv")
    {
        let csv_path = csv_path
            .as_str()
            .ok_or("audience.csv must be a file path")?;
        let path = file.parent().unwrap_or(Path::new(".")).join(csv_path);
        let data =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let rows = audience::parse_csv(&data).map_err(|errs| row_report(&path, &errs))?;
        let message: crate::broadcast::BroadcastMessage =
            serde_json::from_value(body["message"].clone())
                .map_err(|e| format!("{}: message: {e}", file.display()))?;
        let (good, errs, _) = audience::validate(channel, rows, &message.placeholders());
        if !errs.is_empty() {
            return Err(row_report(&path, &errs));
        }
        let mut audience_json = serde_json::to_value(&*aud).map_err(|e| e.to_string())?;
        audience_json["recipients"] = json!(
            good.iter()
                .map(|r: &Recipient| json!({"to": r.to, "variables": r.variables}))
                .collect::<Vec<_>>()
        );
        body["audience"] = audience_json;
    }
    Ok(body)
}

fn row_report(path: &Path, errors: &[audience::RowError]) -> String {
    let mut s = format!("{} has {} invalid row(s):", path.display(), errors.len());
    for e in errors {
        s.push_str(&format!("\n  {}:{}: {}", path.display(), e.line, e.message));
    }
    s
}
