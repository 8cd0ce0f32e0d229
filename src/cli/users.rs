//! `balas users …` (alias `balas agents …`): manage people directly in the
//! store the config points at (`--config`, `BALAS_STORE__…`).
//!
//! With Redis, changes take effect at once on every running process. The
//! embedded store can be opened by one process only: stop `balas serve` first,
//! or use the API (`/api/v1/users`) while it runs. Passwords and tokens are
//! generated from the OS random source and printed once; the store keeps only
//! their hashes.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use crate::access::accounts::{self, AccountError, NewUser, PasswordChange, UserPatch};
use crate::access::audit::{self, Action};
use crate::access::secrets;
use crate::clock::SystemClock;
use crate::config::{Config, Role};
use crate::store::{Store, StoreError};

/// `balas users …`
#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Add a user; prints a generated password once (and an API token with --token).
    Add {
        /// Stable id and sign-in name, e.g. `siti`.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// agent, supervisor, marketer or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Queues to work (repeatable; default all).
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// Conversations at once.
        #[arg(long, default_value_t = 5)]
        max_concurrent: u32,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// Also issue an API token (for the CLI or an integration), printed once.
        #[arg(long)]
        token: bool,
    },
    /// List users (never their passwords or tokens).
    List,
    /// Disable a user: their sessions end and their tokens stop working at once.
    Disable {
        /// The user id.
        id: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user id.
        id: String,
    },
    /// Set a user's password: read from the first line of stdin, or generated
    /// and printed with --generate. Their sessions end.
    Passwd {
        /// The user id.
        id: String,
        /// Generate a password and print it once.
        #[arg(long)]
        generate: bool,
    },
}

/// What went wrong, and the exit code it deserves.
enum Failure {
    /// Bad arguments (exit 2).
    Usage(String),
    /// The store or the system failed (exit 1).
    Runtime(String),
}

impl From<AccountError> for Failure {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => s.into(),
            other => Failure::Usage(other.to_string()),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Runtime(match e {
            StoreError::Locked(dir) => format!(
                "the embedded store in {dir} is in use by a running `balas serve`; stop it first, or manage users through the API (POST /api/v1/users) while it runs"
            ),
            other => format!("{other}; check store.redis_url / store.data_dir in the config"),
        })
    }
}

/// Runs a users action.
pub fn run(action: UsersAction, config: &Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(execute(action, config)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Usage(m)) => {
            eprintln!("balas: {m}");
            Ok(ExitCode::from(2))
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("balas: {m}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn open_store(config: &Config) -> Result<Store, Failure> {
    let backend = crate::app::open_backend(&config.store).await?;
    Ok(Store::new(backend, Arc::new(SystemClock)))
}

fn parse_role(role: &str) -> Result<Role, Failure> {
    serde_json::from_value(serde_json::Value::String(role.to_string())).map_err(|_| {
        Failure::Usage(format!(
            "unknown role {role:?}; use agent, supervisor, marketer or admin"
        ))
    })
}

fn read_password_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Runtime(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(Failure::Usage(
            "no password on stdin; pipe one in (e.g. `read -s P; echo \"$P\" | balas users passwd ID`) or use --generate".into(),
        ));
    }
    Ok(password)
}

async fn audit_cli(store: &Store, action: Action, target: &str) {
    audit::record(store, audit::Entry::new("cli", action, Some(target))).await;
}

async fn execute(action: UsersAction, config: &Config) -> Result<(), Failure> {
    match action {
        UsersAction::List => {
            let store = open_store(config).await?;
            let users = store.users().await?;
            if users.is_empty() {
                println!(
                    "no users yet; add one with `balas users add --id ID --name NAME --role admin`"
                );
            }
            for u in users {
                let queues = if u.queues.is_empty() {
                    "all".to_string()
                } else {
                    u.queues.join(",")
                };
                println!(
                    "{:<16} {:<24} {:<10} {:<8} queues={queues} max={} password={} tokens={}",
                    u.id,
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "enabled" },
                    u.max_concurrent,
                    if u.password_hash.is_some() {
                        "set"
                    } else {
                        "none"
                    },
                    u.tokens.len(),
                );
            }
            Ok(())
        }
        UsersAction::Add {
            id,
            name,
            role,
            queues,
            max_concurrent,
            password_stdin,
            token,
        } => {
            let role = parse_role(&role)?;
            accounts::check_id(&id)?;
            let (password, generated) = if password_stdin {
                (read_password_line()?, false)
            } else {
                (secrets::generate_password(), true)
            };
            let store = open_store(config).await?;
            let user = accounts::create_user(
                &store,
                NewUser {
                    id: id.clone(),
                    name,
                    role,
                    queues,
                    max_concurrent,
                    password: Some(password.clone()),
                },
            )
            .await?;
            audit_cli(&store, Action::UserCreate, &user.id).await;
            println!("Added {} ({}, {}).", user.id, user.name, user.role.as_str());
            if generated {
                println!(
                    "Password (shown only now; they sign in at /console/ with it):\n\n    {password}\n"
                );
            }
            if token {
                let (record, token) = accounts::issue_token(&store, &user.id, "cli").await?;
                audit_cli(&store, Action::TokenIssue, &user.id).await;
                println!("API token {} (shown only now):\n\n    {token}\n", record.id);
            }
            Ok(())
        }
        UsersAction::Disable { id } => set_disabled(config, &id, true).await,
        UsersAction::Enable { id } => set_disabled(config, &id, false).await,
        UsersAction::Passwd { id, generate } => {
            accounts::check_id(&id)?;
            let password = if generate {
                secrets::generate_password()
            } else {
                read_password_line()?
            };
            let store = open_store(config).await?;
            accounts::set_password(&store, &id, &password, PasswordChange::ByAdmin).await?;
            audit_cli(&store, Action::UserPassword, &id).await;
            if generate {
                println!("New password for {id} (shown only now):\n\n    {password}\n");
            } else {
                println!("Password of {id} changed; their sessions have ended.");
            }
            Ok(())
        }
    }
}

async fn set_disabled(config: &Config, id: &str, disabled: bool) -> Result<(), Failure> {
    let store = open_store(config).await?;
    accounts::update_user(
        &store,
        id,
        UserPatch {
            disabled: Some(disabled),
            ..UserPatch::default()
        },
    )
    .await?;
    let action = if disabled {
        Action::UserDisable
    } else {
        Action::UserEnable
    };
    audit_cli(&store, action, id).await;
    if disabled {
        println!("Disabled {id}: their sessions have ended and their tokens no longer work.");
    } else {
        println!("Enabled {id}.");
    }
    Ok(())
}
