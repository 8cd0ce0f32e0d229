//! `balas chat`: talk to the bot in the terminal before deploying rules.
//!
//! Each line goes through the real engine as a WhatsApp message from a pretend
//! customer; replies are printed instead of sent (dry run), and state lives in a
//! temporary embedded store that is deleted on exit.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
use crate::channels::{
    Channel, ContactRef, EventKind, InboundEvent, InboundMessage, MessageContent,
};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::store::Speaker;

/// Runs the chat until end of input or `/quit`.
pub fn run(mut config: Config, from: &str, name: &str) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("balas-chat-{}", uuid::Uuid::now_v7().simple()));
    config.store.redis_url = None;
    config.store.data_dir = dir.clone();
    config.whatsapp.enabled = true;
    config.whatsapp.allow_unsigned = true;
    config.whatsapp.access_token = None;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(chat(config, from, name));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn chat(config: Config, from: &str, name: &str) -> anyhow::Result<ExitCode> {
    let app = App::open(config, Arc::new(SystemClock)).await?;
    let rules = app.rules().current();
    println!(
        "balas chat — {} intents loaded. Type as a customer; /quit to leave, /explain <text> to see the match.",
        rules.intents().len()
    );
    let contact = ContactRef {
        external_id: from.to_string(),
        name: Some(name.to_string()),
        wa_id: Some(from.to_string()),
        user_id: None,
    };
    let stdin = std::io::stdin();
    let mut shown = 0usize;
    let mut n = 0u64;
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            println!();
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/quit" || text == "/exit" {
            break;
        }
        if let Some(rest) = text.strip_prefix("/explain ") {
            let mut out = std::io::stdout();
            let opts = crate::intents::LoadOptions {
                config_variables: app.config().intents.variables.keys().cloned().collect(),
            };
            crate::intents::tools::explain(&app.config().intents.path, &opts, rest, &mut out)?;
            continue;
        }
        n += 1;
        let event = InboundEvent {
            channel: Channel::WhatsApp,
            business_id: "chat".into(),
            dedupe_key: format!("chat:{n}"),
            timestamp_ms: app.store().now_ms(),
            kind: EventKind::Message(InboundMessage {
                contact: contact.clone(),
                message_id: format!("chat.{n}"),
                content: if let Some(p) = text.strip_prefix("/tap ") {
                    MessageContent::Reply {
                        source: crate::channels::ReplyKind::Button,
                        payload: p.to_string(),
                        title: p.to_string(),
                    }
                } else {
                    MessageContent::Text {
                        body: text.to_string(),
                    }
                },
                reply_to: None,
            }),
        };
        crate::engine::handle_event(app.engine(), &event).await?;
        let Some(c) = app.store().contact(Channel::WhatsApp, from).await? else {
            continue;
        };
        // Show what the bot said in the current (or just resolved) case.
        let case = c.current_case.or_else(|| c.cases.last().cloned());
        if let Some(case) = case {
            let transcript = app.store().transcript(&case).await?;
            if transcript.len() < shown {
                shown = 0;
            }
            for entry in &transcript[shown..] {
                match &entry.speaker {
                    Speaker::Bot { intent } => {
                        println!(
                            "bot [{}]> {}",
                            intent.as_deref().unwrap_or("system"),
                            entry.text
                        );
                    }
                    Speaker::System => println!("   · {}", entry.text),
                    _ => {}
                }
            }
            shown = transcript.len();
            if let Some(conv) = app.store().conversation(&case).await? {
                if conv.state != crate::conversation::State::Bot {
                    println!("   · case {} is now {}", conv.id, conv.state.as_str());
                }
                if conv.state == crate::conversation::State::Resolved {
                    shown = 0;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
