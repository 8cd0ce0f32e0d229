//! Intent rules: what a customer wants, from their message.
//!
//! Rule authors write TOML files in a directory (default `intents/`): a
//! `[normalize]` map from chat spellings to standard Indonesian, and
//! `[[intent]]` tables with keywords, regex patterns, exclusions, a priority,
//! an action (reply, handoff, opt-out, opt-in, resolve) and replies in
//! Indonesian and optionally English. The format is documented in [`rules`].
//!
//! ```no_run
//! use std::path::Path;
//! use balas::intents::{Lang, LoadOptions, MatchContext, RuleSet, detect_language};
//!
//! let rules = RuleSet::load_dir(Path::new("intents"), &LoadOptions::default())?;
//! let text = "min paket sy blm nyampe";
//! let intent = match rules.classify(text, &MatchContext::default()) {
//!     Some(m) => rules.get(&m.intent),
//!     None => rules.fallback(),
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
//! - [`matcher`]: the compiled [`RuleSet`], one-pass matching and scoring;
//! - [`template`]: reply templates with `{{variables}}`;
//! - [`language`]: Indonesian/English detection for choosing replies;
//! - [`reload`]: [`RuleHandle`] and hot reload on file change or SIGHUP;
//! - [`tools`]: `check`, `explain` and `test_dataset` for rule authors.

pub mod language;
pub mod matcher;
pub mod normalize;
pub mod reload;
pub mod rules;
pub mod template;
pub mod tools;

pub use language::{Lang, detect_language};
pub use matcher::{
    Candidate, CandidateStatus, Explanation, Match, MatchContext, PAYLOAD_PREFIX, RuleSet, Score,
};
pub use normalize::SynonymMap;
pub use reload::{RuleHandle, spawn_reloader};
pub use rules::{
    Action, FALLBACK_INTENT, Intent, LoadError, LoadErrors, LoadOptions, MEDIA_INTENTS, SourceLoc,
    When, is_media_intent,
};
pub use template::{BUILTIN_VARIABLES, ReplyTemplate, TemplateError};
