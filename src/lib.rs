//! # Balas
//!
//! Customer support on WhatsApp and Instagram for Indonesian businesses: answer
//! routine questions instantly from intent rules, hand the rest to human agents,
//! ask afterwards whether the problem was solved, and send follow-up broadcasts.
//!
//! ## The path of a message
//!
//! ```text
//! Meta webhook ─▶ webhook ─▶ channels::{whatsapp,instagram} ─▶ InboundEvent
//!     (signature, dedupe,        (parse platform JSON)
//!      durable enqueue, 200)
//!                  │
//!                  ▼  store: `inbound` job queue, run by the jobs runner
//!            engine ─▶ intents (rules + model) ─▶ action: reply / handoff / opt-out …
//!                  │                         └▶ store: agent queue ─▶ api (agents)
//!                  ▼
//!            outbox (durable, retried, rate-limited, 24 h window; an `outbox` job)
//!                  │
//!                  ▼
//!            channels::{whatsapp,instagram} clients ─▶ Graph API
//! ```
//!
//! The engine and the outbox publish [`events`]; surveys, broadcasts and the
//! live console feed subscribe. Nothing calls upward: the top-level modules
//! form a DAG (`tests/architecture.rs` checks it).
//!
//! ## Modules
//!
//! Along the path of a message:
//! - [`webhook`]: the HTTP edge for Meta: handshake, verification, durable acknowledgement.
//! - [`channels`]: WhatsApp and Instagram: signatures, webhook parsing into
//!   [`channels::InboundEvent`]s, rendering and sending outbound messages, media.
//! - [`engine`]: the conversation engine: what happens to each inbound event,
//!   timers (SLA, reassurance), ownership changes with their side effects.
//! - [`conversation`]: the one state machine of who owns a case (bot, queue, agent).
//! - [`intents`]: rule files with examples, normalization of chat Indonesian, rule
//!   matching, the example-trained classifier and [`intents::RuleSet::understand`]
//!   (answer, clarify or fall back; numbers found in the message).
//! - [`outbox`]: durable outbound delivery with retries, pacing and window checks,
//!   from the number or account the customer wrote to ([`outbox::senders`]).
//!
//! Underneath:
//! - [`store`]: all state, through one API over a Redis (one server or a
//!   Cluster) or an embedded (redb) backend; every key scheme, and the key →
//!   slot plan, lives there.
//! - [`jobs`]: the one job runner (leases, heartbeats, fencing, retries, dead
//!   letters); inbound, timers, surveys, the outbox, broadcasts and media
//!   downloads are its handlers.
//! - [`events`]: typed domain events from lower layers to upper ones.
//! - [`media`]: the bytes of photos, videos, voice notes and documents, content-addressed,
//!   in a directory or an S3-compatible bucket.
//!
//! On top:
//! - [`attachments`]: files in conversations (downloading customers' files,
//!   handing ours to the platforms, retention).
//! - [`survey`]: satisfaction surveys after resolution; [`reports`]: what supervisors read.
//! - [`broadcast`]: marketing campaigns, paced and sent at most once per recipient.
//! - [`access`]: accounts, sign-in, API tokens, the least-privilege rules
//!   they obey, and the audit log.
//! - [`privacy`]: customers' personal data: export, erasure, and the
//!   retention job that deletes what is older than `[retention]` allows.
//! - [`api`]: the HTTP API for agents, supervisors and marketers; [`console`]: the
//!   browser console served on top of it.
//! - [`app`]: the composition root (builds and wires the parts); [`server`]: routes,
//!   workers and graceful shutdown; [`http`]: the JSON error shape.
//! - [`config`]: the TOML file plus `BALAS_SECTION__KEY` overrides, validated up front.
//! - [`clock`]: the one clock; tests inject one they can move.
//! - [`telemetry`]: logs and Prometheus metrics; [`allocator`]: the memory allocator.
//! - [`cli`]: the `balas` subcommands.

pub mod access;
pub mod allocator;
pub mod api;
pub mod app;
pub mod attachments;
pub mod broadcast;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod conversation;
pub mod engine;
pub mod events;
pub mod http;
pub mod intents;
pub mod jobs;
pub mod media;
pub mod outbox;
pub mod privacy;
pub mod reports;
pub mod server;
pub mod store;
pub mod survey;
pub mod telemetry;
pub mod webhook;
