//! The `balas` subcommands.
//!
//! Exit codes: 0 success, 1 a check or test failed, 2 bad configuration or
//! usage (with a message saying what and how to fix it).

mod chat;
mod remote;
mod users;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{self, Config};

/// Customer support on WhatsApp and Instagram: intent rules answer routine
/// questions, human agents take the rest, surveys ask how it went.
#[derive(Debug, Parser)]
#[command(name = "balas", version, about, long_about = None)]
pub struct Cli {
    /// Config file. Default: config/balas.toml if it exists, else built-in
    /// defaults. Any key can be overridden with BALAS_SECTION__KEY.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: webhooks, agent API and console, background workers.
    Serve,
    /// Validate the configuration and the intent rules, then exit.
    CheckConfig,
    /// Tools for intent rule authors.
    Intents {
        /// Which tool.
        #[command(subcommand)]
        tool: IntentsTool,
    },
    /// Manage users (agents, supervisors, marketers, admins) in the store.
    #[command(alias = "agents")]
    Users {
        /// Which action.
        #[command(subcommand)]
        action: users::UsersAction,
    },
    /// Chat with the bot in the terminal (dry-run channel, temporary store).
    Chat {
        /// Pretend to be this WhatsApp number.
        #[arg(long, default_value = "6281200000000")]
        from: String,
        /// Pretend to have this profile name.
        #[arg(long, default_value = "Tamu")]
        name: String,
    },
    /// Print satisfaction and service-time reports from a running server.
    Report {
        /// Start date (YYYY-MM-DD in the business time zone, or RFC 3339). Default: 30 days ago.
        #[arg(long)]
        from: Option<String>,
        /// End date, inclusive. Default: now.
        #[arg(long)]
        to: Option<String>,
        /// day, agent, queue or channel.
        #[arg(long)]
        group_by: Option<String>,
        /// Server and token.
        #[command(flatten)]
        remote: remote::Remote,
    },
    /// Create and follow broadcasts on a running server.
    Broadcast {
        /// Which action.
        #[command(subcommand)]
        action: remote::BroadcastAction,
        /// Server and token.
        #[command(flatten)]
        remote: remote::Remote,
    },
}

/// `balas intents …`
#[derive(Debug, Subcommand)]
pub enum IntentsTool {
    /// Validate rule files; warn about shadowed intents, contested keywords,
    /// examples understood as another intent and intents with too few examples.
    Check {
        /// Rules directory (default: intents.path from the config).
        path: Option<PathBuf>,
    },
    /// Show how a message is understood: rule hits, the model's top three, the
    /// numbers in it, the decision and why.
    Explain {
        /// The customer message.
        message: String,
        /// Rules directory (default: intents.path from the config).
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Measure understanding on labelled messages (`[[example]]` with text and
    /// intent), or with `--cv K` by cross-validation on the rules' own examples.
    Test {
        /// Dataset file (TOML with `[[example]]` entries).
        #[arg(required_unless_present = "cv", conflicts_with = "cv")]
        dataset: Option<PathBuf>,
        /// K-fold cross-validation on the rule files' examples instead of a dataset.
        #[arg(long, value_name = "K")]
        cv: Option<usize>,
        /// Exit 1 when accuracy is below this (0.0–1.0).
        #[arg(long, value_name = "X")]
        min_accuracy: Option<f64>,
        /// Print JSON instead of a report.
        #[arg(long)]
        json: bool,
        /// Also list every misclassified message.
        #[arg(long)]
        errors: bool,
        /// Rules directory (default: intents.path from the config).
        #[arg(long)]
        rules: Option<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("balas: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command, config) {
        Ok(code) => code,
        // `balas intents test … | head` closing the pipe is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("balas: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Loads `--config`, or `config/balas.toml` when present, or defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    match path {
        Some(p) => config::load(Some(p)),
        None => {
            let default = Path::new("config/balas.toml");
            config::load(default.exists().then_some(default))
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout();
    let opts = crate::intents::LoadOptions {
        config_variables: config.intents.variables.keys().cloned().collect(),
    };
    match command {
        Command::Serve => serve(config),
        Command::CheckConfig => {
            let code = crate::intents::tools::check(&config.intents.path, &opts, &mut out)?;
            if code == 0 {
                println!("configuration OK");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(2))
            }
        }
        Command::Intents { tool } => {
            let rules_or = |p: Option<PathBuf>| p.unwrap_or_else(|| config.intents.path.clone());
            let code = match tool {
                IntentsTool::Check { path } => {
                    crate::intents::tools::check(&rules_or(path), &opts, &mut out)?
                }
                IntentsTool::Explain { message, rules } => {
                    crate::intents::tools::explain(&rules_or(rules), &opts, &message, &mut out)?
                }
                IntentsTool::Test {
                    dataset,
                    cv,
                    min_accuracy,
                    json,
                    errors,
                    rules,
                } => {
                    use crate::intents::tools::{TestOptions, TestSource};
                    let source = match (&dataset, cv) {
                        (_, Some(k)) => TestSource::CrossValidation(k),
                        (Some(path), None) => TestSource::Dataset(path),
                        // clap requires one of them.
                        (None, None) => anyhow::bail!("give a DATASET file or --cv K"),
                    };
                    let options = TestOptions {
                        min_accuracy,
                        json,
                        errors,
                    };
                    crate::intents::tools::test(&rules_or(rules), &opts, source, options, &mut out)?
                }
            };
            Ok(exit(code))
        }
        Command::Users { action } => users::run(action, &config),
        Command::Chat { from, name } => chat::run(config, &from, &name),
        Command::Report {
            from,
            to,
            group_by,
            remote,
        } => Ok(remote::report(&remote, from, to, group_by)),
        Command::Broadcast { action, remote } => Ok(remote::broadcast(&remote, action)),
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    crate::telemetry::init_logging(config.server.log_format);
    // Bad rules are a configuration error: report them all and exit 2 before
    // anything starts.
    let opts = crate::intents::LoadOptions {
        config_variables: config.intents.variables.keys().cloned().collect(),
    };
    if let Err(errors) = crate::intents::RuleSet::load_dir(&config.intents.path, &opts) {
        eprintln!(
            "balas: the intent rules in {} have errors:\n{errors}",
            config.intents.path.display()
        );
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        for (name, enabled, unsigned, senders) in [
            ("whatsapp", config.whatsapp.enabled, config.whatsapp.app_secret.is_none(), config.whatsapp_senders()),
            ("instagram", config.instagram.enabled, config.instagram.app_secret.is_none(), config.instagram_senders()),
        ] {
            if enabled && unsigned {
                tracing::warn!("!!! {name}: allow_unsigned = true and no app_secret — webhooks are NOT verified. Use this for local trials only.");
            }
            for sender in senders.iter().filter(|s| enabled && s.access_token.is_none()) {
                tracing::warn!(sender = %sender.name, "{name}: no access_token — outbound messages are recorded as dry runs, not sent");
            }
        }
        let listen: std::net::SocketAddr = config.server.listen.parse()?;
        let app = crate::app::App::open(config, Arc::new(SystemClock)).await?;
        tracing::info!(store = app.store().backend_name(), rules = app.rules().current().intents().len(), "starting");
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}; set server.listen or BALAS_SERVER__LISTEN"))?;
        crate::server::serve(app, listener, crate::server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
