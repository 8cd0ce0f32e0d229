//! Intent rules and examples: what a customer wants, from their message.
//!
//! Rule authors write TOML files in a directory (default `intents/`): a
//! `[normalize]` map from chat spellings to standard Indonesian, and
//! `[[intent]]` tables with keywords, regex patterns, exclusions, a priority,
//! an action (reply, handoff, opt-out, opt-in, resolve), replies in
//! Indonesian and optionally English, and `examples` of what customers write.
//! The format is documented in [`rules`]. At every load a classifier is
//! trained from the examples; [`RuleSet::understand`] combines it with the
//! rules into one decision: answer, ask, or fall back.
//!
//! ```no_run
//! use std::path::Path;
//! use balas::intents::{Decision, Lang, LoadOptions, MatchContext, RuleSet, detect_language};
//!
//! let rules = RuleSet::load_dir(Path::new("intents"), &LoadOptions::default())?;
//! let text = "min paket sy blm nyampe, resi JP1234567890";
//! let understanding = rules.understand(text, &MatchContext::default());
//! let intent = match &understanding.decision {
//!     Decision::Answer { intent, .. } => rules.get(intent),
//!     Decision::Clarify { .. } | Decision::Fallback { .. } => rules.fallback(),
//! };
//! if let Some(reply) = intent.and_then(|i| i.reply(0, detect_language(text))) {
//!     println!("{}", reply.render(&|_| None));
//! }
//! # Ok::<(), balas::intents::LoadErrors>(())
//! ```
//!
//! Modules:
//! - [`normalize`]: Unicode and chat-spelling normalization;
//! - [`rules`]: the file format, loading and errors with `file:line`;
//! - [`matcher`]: the compiled [`RuleSet`], one-pass rule matching and scoring;
//! - `features`, `classifier` (private): hashed n-gram features and the
//!   example-trained linear model;
//! - [`understand`]: rules and model combined into a [`Decision`];
//! - [`entities`]: order, tracking, ticket and phone numbers in a message;
//! - [`template`]: reply templates with `{{variables}}`;
//! - [`language`]: Indonesian/English detection for choosing replies;
//! - [`reload`]: [`RuleHandle`] and hot reload on file change or SIGHUP;
//! - [`evaluation`]: datasets and cross-validation measured as numbers;
//! - [`tools`]: `check`, `explain` and `test` for rule authors.

mod augment;
mod classifier;
pub mod entities;
pub mod evaluation;
mod features;
pub mod language;
pub mod matcher;
pub mod normalize;
pub mod reload;
pub mod rules;
pub mod template;
pub mod tools;
pub mod understand;

pub use entities::{Courier, Entity, EntityKind};
pub use language::{Lang, detect_language};
pub use matcher::{
    Candidate, CandidateStatus, Explanation, Match, MatchContext, PAYLOAD_PREFIX, RuleSet, Score,
};
pub use normalize::SynonymMap;
pub use reload::{RuleHandle, spawn_reloader};
pub use rules::{
    Action, Confidence, FALLBACK_INTENT, Intent, Kind, LoadError, LoadErrors, LoadOptions,
    MEDIA_INTENTS, SourceLoc, When, is_media_intent,
};
pub use template::{BUILTIN_VARIABLES, ReplyTemplate, TemplateError};
pub use understand::{
    ClarifyKind, Decision, Evidence, KEEP_SUBSCRIBED_PAYLOAD, NONE_LABEL, Question, Reason, Scored,
    Understanding,
};
