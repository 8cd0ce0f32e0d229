//! `balas agents add`: create an agent and print its token once.
//!
//! The token is random and shown only now; the config keeps only its SHA-256.
//! The new `[[agents]]` block is appended to the config file so it is reviewed
//! and deployed like any other setting (restart the server to pick it up).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::api::auth::token_hash;
use crate::config::{Config, Role};

/// `balas agents …`
#[derive(Debug, Subcommand)]
pub enum AgentsAction {
    /// Add an agent: prints a new token once and appends the agent to the config file.
    Add {
        /// Stable id, e.g. `siti`.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// agent, supervisor, marketer or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Queues to take conversations from (repeatable; default all).
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// Conversations at once.
        #[arg(long, default_value_t = 5)]
        max_concurrent: u32,
        /// Config file to append to.
        #[arg(long, default_value = "config/balas.toml")]
        file: PathBuf,
    },
    /// List configured agents (never their tokens).
    List,
}

/// Runs an agents action.
pub fn run(action: AgentsAction, config: &Config) -> anyhow::Result<ExitCode> {
    match action {
        AgentsAction::List => {
            for a in &config.agents {
                let queues = if a.queues.is_empty() {
                    "all".to_string()
                } else {
                    a.queues.join(",")
                };
                println!(
                    "{:<16} {:<24} {:<10} queues={queues} max={}",
                    a.id,
                    a.name,
                    a.role.as_str(),
                    a.max_concurrent
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsAction::Add {
            id,
            name,
            role,
            queues,
            max_concurrent,
            file,
        } => {
            let role: Role = match serde_json::from_value(serde_json::Value::String(role.clone())) {
                Ok(r) => r,
                Err(_) => {
                    eprintln!(
                        "balas: unknown role {role:?}; use agent, supervisor, marketer or admin"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            if id.trim().is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                eprintln!("balas: --id must be letters, digits, '-' or '_'");
                return Ok(ExitCode::from(2));
            }
            if config.agents.iter().any(|a| a.id == id) {
                eprintln!("balas: an agent with id {id:?} already exists");
                return Ok(ExitCode::from(2));
            }
            let mut bytes = [0u8; 24];
            for b in &mut bytes {
                *b = fastrand::u8(..);
            }
            let token = format!("blk_{}", hex::encode(bytes));
            let block = format!(
                "\n[[agents]]\nid = {}\nname = {}\nrole = \"{}\"\nqueues = {}\nmax_concurrent = {max_concurrent}\ntoken_sha256 = \"{}\"\n",
                toml_str(&id),
                toml_str(&name),
                role.as_str(),
                format_args!(
                    "[{}]",
                    queues
                        .iter()
                        .map(|q| toml_str(q))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                token_hash(&token),
            );
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open {} to add the agent: {e}; pass --file PATH",
                        file.display()
                    )
                })?;
            f.write_all(block.as_bytes())?;
            println!(
                "Added agent {id} ({}) to {}.",
                role.as_str(),
                file.display()
            );
            println!("Token (shown only now, give it to {name}):\n\n    {token}\n");
            println!("Restart balas to load the new agent.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
