//! The rule file format, loading and load errors with `file:line`.
//!
//! A rule directory holds `*.toml` files, loaded in file-name order. Each file
//! may contain a `[normalize]` table and any number of `[[intent]]` tables:
//!
//! ```toml
//! [normalize]
//! # canonical = [variants…]; applied to messages, keywords and nothing else
//! tidak = ["gk", "ga", "gak", "nggak"]
//! "terima kasih" = ["makasih", "mksh"]
//!
//! [[intent]]
//! name = "refund_return"              # unique; buttons select it with payload `intent:refund_return`
//! description = "wants money back"    # optional, for rule authors
//! keywords = ["refund", "retur", "pengembalian dana"]   # whole words, after normalization
//! patterns = ['(uang|dana)\w* .{0,20}kembali']          # regexes on the normalized text, case-insensitive
//! exclude = ['(bukan|tidak) (mau )?refund']              # any match vetoes the intent
//! priority = 70                       # higher wins; ties go to the longer match
//! action = "handoff"                  # reply | handoff | opt_out | opt_in | resolve
//! reply = "Mohon maaf, {{contact.name}} …"   # or replies = [..] (rotated)
//! replies_en = ["Sorry about that …"]         # optional English: reply_en / replies_en
//! queue = "refunds"                   # handoff (or reply: where "a person, about this" goes)
//! queue_priority = 1                  # with queue
//! channels = ["whatsapp"]             # optional: only on these channels
//! when = "always"                     # always | business_hours | after_hours
//! kind = "topic"                      # topic | small_talk | person (see [`Kind`])
//! label = "Retur & refund"            # button label in clarifying questions (label_en too)
//! examples = ["duitnya kapan balik min", "I want my money back"]   # teach the model
//! not_examples = ["tidak jadi refund, barangnya bagus"]            # … and what it is not
//!
//! [[intent.buttons]]                  # rendered per channel (reply buttons / quick replies)
//! label = "Cek garansi"
//! payload = "intent:warranty"
//! ```
//!
//! Keywords match whole words of the normalized text; a keyword also matches
//! when followed by one of the clitics `nya`, `lah`, `kah`, `pun`, `ku`, `mu`
//! (`garansi` matches `garansinya`). Patterns are [`regex`] syntax, run against
//! the normalized text (lowercase letters, digits, single spaces: no punctuation),
//! case-insensitive unless they say `(?-i)`.
//!
//! The intent named `fallback` answers when nothing matches; it may not have
//! keywords or patterns. Its `examples` teach the model what is out of scope
//! (chit-chat, spam, unrelated questions): the model's `none` class.
//!
//! `examples` train the classifier (see [`super::classifier`]) that covers what
//! no keyword names; `not_examples` are messages the model must not give this
//! intent (they only push this intent down, they teach no other one).
//!
//! One file may also set the confidence bands (defaults shown, see [`Confidence`]):
//!
//! ```toml
//! [confidence]
//! answer = 0.75            # at least this sure: answer
//! clarify = 0.3            # at least this sure: ask which of the two likeliest topics
//! confirm_opt_out = 0.2    # an opt-out this likely is confirmed with a question
//! ```
//!
//! Every problem found is reported, not just the first: see [`LoadErrors`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::language::Lang;
use super::normalize::SynonymMap;
use super::template::ReplyTemplate;
use crate::channels::{Button, Channel};

/// The name of the intent used when nothing matches.
pub const FALLBACK_INTENT: &str = "fallback";

/// Intents the engine picks by what a message carries rather than by its
/// words: `media_received` acknowledges a photo, video or document the bot
/// expected; `voice_note` answers a voice note. Like `fallback`, they have no
/// keywords or patterns. A family may have several members, `voice_note` and
/// `voice_note_<anything>`: the engine takes the highest `priority` whose
/// `when` and `channels` allow it (e.g. a handoff during business hours and a
/// request to type after hours).
pub const MEDIA_INTENTS: &[&str] = &["media_received", "voice_note"];

/// Whether `name` belongs to one of the [`MEDIA_INTENTS`] families.
pub fn is_media_intent(name: &str) -> bool {
    MEDIA_INTENTS.iter().any(|family| {
        name == *family
            || name
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('_') && rest.len() > 1)
    })
}

/// Field names an `[[intent]]` table may have.
pub const INTENT_FIELDS: &[&str] = &[
    "name",
    "description",
    "patterns",
    "keywords",
    "exclude",
    "priority",
    "action",
    "reply",
    "replies",
    "reply_en",
    "replies_en",
    "buttons",
    "queue",
    "queue_priority",
    "channels",
    "when",
    "kind",
    "label",
    "label_en",
    "examples",
    "not_examples",
];

/// Keys of the `[confidence]` table.
pub const CONFIDENCE_FIELDS: &[&str] = &["answer", "clarify", "confirm_opt_out"];

/// Options for loading a rule directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Template variables defined in the config, allowed in replies in addition
    /// to the built-in ones ([`super::template::BUILTIN_VARIABLES`]).
    pub config_variables: BTreeSet<String>,
}

/// What the engine does when an intent wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Answer with the intent's reply; the bot keeps the conversation.
    Reply,
    /// Send the reply (if any) and put the conversation in the agent queue.
    Handoff,
    /// Stop marketing messages to this contact, confirm with the reply.
    OptOut,
    /// (Re-)subscribe this contact to marketing messages, confirm with the reply.
    OptIn,
    /// Send the reply and mark the case resolved.
    Resolve,
}

impl Action {
    /// Parses the file spelling (`reply`, `handoff`, `opt_out`, `opt_in`, `resolve`).
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "reply" => Action::Reply,
            "handoff" => Action::Handoff,
            "opt_out" => Action::OptOut,
            "opt_in" => Action::OptIn,
            "resolve" => Action::Resolve,
            _ => return None,
        })
    }

    /// The file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reply => "reply",
            Action::Handoff => "handoff",
            Action::OptOut => "opt_out",
            Action::OptIn => "opt_in",
            Action::Resolve => "resolve",
        }
    }
}

/// When an intent may match, relative to business hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum When {
    /// At any time (the default).
    #[default]
    Always,
    /// Only while the team is available.
    BusinessHours,
    /// Only while the team is not available.
    AfterHours,
}

impl When {
    /// Parses the file spelling (`always`, `business_hours`, `after_hours`).
    pub fn parse(s: &str) -> Option<When> {
        Some(match s {
            "always" => When::Always,
            "business_hours" => When::BusinessHours,
            "after_hours" => When::AfterHours,
            _ => return None,
        })
    }

    /// Whether an intent with this setting may match given the team's availability.
    pub fn allows(self, business_hours_open: bool) -> bool {
        match self {
            When::Always => true,
            When::BusinessHours => business_hours_open,
            When::AfterHours => !business_hours_open,
        }
    }
}

/// What sort of message an intent stands for, which changes how it combines
/// with the others in [`super::understand`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// A customer request or question (the default).
    #[default]
    Topic,
    /// A greeting, thanks or other pleasantry: a request in the same message
    /// always wins over it.
    SmallTalk,
    /// A request for a person: together with a topic it goes to that topic's
    /// queue, and it is never answered with an unrelated reply.
    Person,
}

impl Kind {
    /// Parses the file spelling (`topic`, `small_talk`, `person`).
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "topic" => Kind::Topic,
            "small_talk" => Kind::SmallTalk,
            "person" => Kind::Person,
            _ => return None,
        })
    }

    /// The file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Topic => "topic",
            Kind::SmallTalk => "small_talk",
            Kind::Person => "person",
        }
    }
}

/// The confidence bands of [`super::understand`] (the `[confidence]` table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// At least this sure of the top intent: answer it.
    pub answer: f32,
    /// At least this sure (and below `answer`): ask a clarifying question with
    /// the two likeliest topics. Below: the fallback.
    pub clarify: f32,
    /// An opt-out at least this likely, when not clear enough to act on, is
    /// confirmed with a question rather than ignored.
    pub confirm_opt_out: f32,
}

impl Default for Confidence {
    fn default() -> Confidence {
        Confidence {
            answer: 0.75,
            clarify: 0.3,
            confirm_opt_out: 0.2,
        }
    }
}

/// Where something was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLoc {
    /// The rule file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One intent from the rule files.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Unique name; `intent:NAME` payloads select it.
    pub name: String,
    /// Free text for rule authors.
    pub description: Option<String>,
    /// What the engine does when it wins.
    pub action: Action,
    /// Higher wins.
    pub priority: i32,
    /// Keywords as written in the file.
    pub keywords: Vec<String>,
    /// Patterns as written in the file.
    pub patterns: Vec<String>,
    /// Exclude patterns as written in the file.
    pub exclude: Vec<String>,
    /// Indonesian replies, rotated.
    pub replies: Vec<ReplyTemplate>,
    /// English replies, rotated; when empty English speakers get [`Intent::replies`].
    pub replies_en: Vec<ReplyTemplate>,
    /// Buttons offered with the reply (`id` = payload, `title` = label).
    pub buttons: Vec<Button>,
    /// Agent queue for [`Action::Handoff`]; on an [`Action::Reply`] intent, the
    /// queue of a request for a person about this topic.
    pub queue: Option<String>,
    /// Priority within the agent queue (higher is served first).
    pub queue_priority: i32,
    /// Only these channels, when set.
    pub channels: Option<Vec<Channel>>,
    /// Business-hours condition.
    pub when: When,
    /// How it combines with other intents in one message.
    pub kind: Kind,
    /// Button label when a clarifying question offers this intent (WhatsApp
    /// allows 20 characters); the name when unset.
    pub label: Option<String>,
    /// English button label; [`Intent::label`] when unset.
    pub label_en: Option<String>,
    /// Messages that mean this intent: the classifier's training data.
    pub examples: Vec<String>,
    /// Messages that must not be given this intent.
    pub not_examples: Vec<String>,
    /// Where the intent is defined (the line of its `name`).
    pub source: SourceLoc,
    pub(crate) compiled: Compiled,
}

/// Load-time artefacts the matcher uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compiled {
    /// Compiled [`Intent::patterns`].
    pub patterns: Vec<Regex>,
    /// Compiled [`Intent::exclude`].
    pub exclude: Vec<Regex>,
    /// Normalized keywords, parallel to [`Intent::keywords`].
    pub keywords: Vec<String>,
    /// Line of each keyword (for tool warnings).
    pub keyword_lines: Vec<usize>,
    /// Line of each example (for tool warnings).
    pub example_lines: Vec<usize>,
    /// Line of each not-example (for tool warnings).
    pub not_example_lines: Vec<usize>,
}

impl Intent {
    /// The reply for this turn: replies rotate by `turn`; English customers get
    /// [`Intent::replies_en`] when present, everyone else [`Intent::replies`].
    pub fn reply(&self, turn: u64, lang: Lang) -> Option<&ReplyTemplate> {
        let list = if lang == Lang::En && !self.replies_en.is_empty() {
            &self.replies_en
        } else {
            &self.replies
        };
        if list.is_empty() {
            return None;
        }
        list.get((turn % list.len() as u64) as usize)
    }

    /// Whether the intent may match on `channel` (`None`: any channel).
    pub fn allows_channel(&self, channel: Option<Channel>) -> bool {
        match (&self.channels, channel) {
            (Some(list), Some(c)) => list.contains(&c),
            _ => true,
        }
    }

    /// The button label offering this intent in a clarifying question.
    pub fn button_label(&self, lang: Lang) -> &str {
        let id = self.label.as_deref().unwrap_or(&self.name);
        match lang {
            Lang::En => self.label_en.as_deref().unwrap_or(id),
            _ => id,
        }
    }

    /// Whether the intent has anything to match text with.
    pub fn has_triggers(&self) -> bool {
        !self.keywords.is_empty() || !self.patterns.is_empty()
    }
}

/// One problem in the rule files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The rule file (or directory, for directory-level problems).
    pub file: PathBuf,
    /// 1-based line, 0 when not about a line.
    pub line: usize,
    /// The intent concerned, when known.
    pub intent: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(intent) = &self.intent {
            write!(f, ": intent `{intent}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading, sorted by file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} error{} in the intent rules:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// The result of parsing rule files, before the matcher is built.
pub(crate) struct Parsed {
    pub synonyms: SynonymMap,
    pub intents: Vec<Intent>,
    pub files: Vec<PathBuf>,
    pub confidence: Confidence,
}

/// The `*.toml` files of `dir` in name order.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and parses every rule file of `dir`.
pub(crate) fn parse_dir(dir: &Path, opts: &LoadOptions) -> Result<Parsed, LoadErrors> {
    let files = rule_files(dir).map_err(|e| {
        LoadErrors(vec![LoadError {
            file: dir.to_path_buf(),
            line: 0,
            intent: None,
            message: format!("cannot read the rule directory: {e}"),
        }])
    })?;
    let mut sources = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(e) => errors.push(LoadError {
                file,
                line: 0,
                intent: None,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }
    if sources.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            file: dir.to_path_buf(),
            line: 0,
            intent: None,
            message: "no `*.toml` rule files in this directory".into(),
        });
    }
    match parse_sources(&sources, opts) {
        Ok(parsed) if errors.is_empty() => Ok(parsed),
        Ok(_) => Err(LoadErrors(errors)),
        Err(LoadErrors(more)) => {
            errors.extend(more);
            Err(LoadErrors(errors))
        }
    }
}

/// Parses rule files given as `(path, contents)`, in the given order.
pub(crate) fn parse_sources(
    sources: &[(PathBuf, String)],
    opts: &LoadOptions,
) -> Result<Parsed, LoadErrors> {
    let mut loader = Loader {
        opts,
        errors: Vec::new(),
        synonyms: SynonymMap::new(),
        synonym_origin: HashMap::new(),
        canonicals: Vec::new(),
        confidence: None,
    };
    let mut raw_intents = Vec::new();
    for (path, text) in sources {
        let file = FileCtx::new(path, text);
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        if !syntax_errors.is_empty() {
            for e in syntax_errors {
                let line = e.span().map(|s| file.line(s.start)).unwrap_or(0);
                loader.errors.push(LoadError {
                    file: path.clone(),
                    line,
                    intent: None,
                    message: format!("TOML syntax: {}", e.message().trim()),
                });
            }
            continue;
        }
        loader.file(&file, doc.get_ref(), &mut raw_intents);
    }
    for c in std::mem::take(&mut loader.canonicals) {
        loader.synonyms.protect(&c);
    }
    // Second phase: everything that needs the complete synonym map or all names.
    let mut intents = Vec::with_capacity(raw_intents.len());
    let mut names: HashMap<String, SourceLoc> = HashMap::new();
    for raw in raw_intents {
        if let Some(intent) = loader.finish(raw, &mut names) {
            intents.push(intent);
        }
    }
    let mut errors = loader.errors;
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(LoadErrors(errors));
    }
    Ok(Parsed {
        synonyms: loader.synonyms,
        intents,
        files: sources.iter().map(|(p, _)| p.clone()).collect(),
        confidence: loader.confidence.map(|(c, _)| c).unwrap_or_default(),
    })
}

/// A file and its line starts, for turning byte offsets into lines.
struct FileCtx<'a> {
    path: &'a Path,
    line_starts: Vec<usize>,
}

impl<'a> FileCtx<'a> {
    fn new(path: &'a Path, text: &str) -> FileCtx<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        FileCtx { path, line_starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// An intent after the first phase: fields read, not yet checked against the
/// complete synonym map and the other intents.
struct RawIntent {
    intent: Intent,
    keyword_lines: Vec<usize>,
    queue_line: usize,
    action_set: bool,
    reply_line: usize,
    reply_field: bool,
    action_invalid: bool,
    trigger_line: usize,
}

struct Loader<'o> {
    opts: &'o LoadOptions,
    errors: Vec<LoadError>,
    synonyms: SynonymMap,
    synonym_origin: HashMap<String, SourceLoc>,
    canonicals: Vec<String>,
    /// The `[confidence]` table and where it was set (it may be set once).
    confidence: Option<(Confidence, SourceLoc)>,
}

type Item<'i> = Spanned<DeValue<'i>>;

impl Loader<'_> {
    fn err(&mut self, file: &FileCtx<'_>, line: usize, intent: Option<&str>, msg: String) {
        self.errors.push(LoadError {
            file: file.path.to_path_buf(),
            line,
            intent: intent.map(str::to_string),
            message: msg,
        });
    }

    fn file(&mut self, file: &FileCtx<'_>, doc: &DeTable<'_>, out: &mut Vec<RawIntent>) {
        for (key, value) in doc.iter() {
            let line = file.line(key.span().start);
            match key_str(key) {
                "normalize" => match value.get_ref() {
                    DeValue::Table(t) => self.normalize(file, t),
                    _ => self.err(
                        file,
                        line,
                        None,
                        "`normalize` must be a table: write `[normalize]` and `canonical = [\"variant\", …]` lines".into(),
                    ),
                },
                "intent" => match value.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::Table(t) => {
                                    let at = file.line(item.span().start).max(line);
                                    if let Some(raw) = self.intent(file, t, at) {
                                        out.push(raw);
                                    }
                                }
                                _ => self.err(
                                    file,
                                    file.line(item.span().start),
                                    None,
                                    "each intent must be a table: write `[[intent]]`".into(),
                                ),
                            }
                        }
                    }
                    _ => self.err(
                        file,
                        line,
                        None,
                        "`intent` must be an array of tables: write `[[intent]]`".into(),
                    ),
                },
                "confidence" => match value.get_ref() {
                    DeValue::Table(t) => self.confidence(file, t, line),
                    _ => self.err(
                        file,
                        line,
                        None,
                        "`confidence` must be a table: write `[confidence]` with `answer`, `clarify` and `confirm_opt_out`".into(),
                    ),
                },
                other => self.err(
                    file,
                    line,
                    None,
                    format!("unknown top-level key `{other}`; a rule file has only `[normalize]`, `[confidence]` and `[[intent]]` tables"),
                ),
            }
        }
    }

    fn confidence(&mut self, file: &FileCtx<'_>, table: &DeTable<'_>, line: usize) {
        let here = SourceLoc {
            file: file.path.to_path_buf(),
            line,
        };
        if let Some((_, first)) = &self.confidence {
            let msg = format!(
                "`[confidence]` is already set at {first}; keep one `[confidence]` table in the rule directory"
            );
            self.err(file, line, None, msg);
            return;
        }
        let mut c = Confidence::default();
        let mut ok = true;
        for (key, value) in table.iter() {
            let kline = file.line(key.span().start);
            let name = key_str(key);
            let slot = match name {
                "answer" => &mut c.answer,
                "clarify" => &mut c.clarify,
                "confirm_opt_out" => &mut c.confirm_opt_out,
                other => {
                    let hint = closest(other, CONFIDENCE_FIELDS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    self.err(
                        file,
                        kline,
                        None,
                        format!(
                            "unknown key `confidence.{other}`{hint}; allowed: {}",
                            CONFIDENCE_FIELDS.join(", ")
                        ),
                    );
                    ok = false;
                    continue;
                }
            };
            let v = match value.get_ref() {
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
                _ => None,
            };
            match v {
                Some(v) if (0.0..=1.0).contains(&v) => *slot = v as f32,
                _ => {
                    self.err(
                        file,
                        kline,
                        None,
                        format!("`confidence.{name}` must be a number from 0.0 to 1.0"),
                    );
                    ok = false;
                }
            }
        }
        if ok && c.clarify > c.answer {
            self.err(
                file,
                line,
                None,
                format!(
                    "`confidence.clarify` ({}) is above `confidence.answer` ({}); clarify must not be higher than answer",
                    c.clarify, c.answer
                ),
            );
        }
        self.confidence = Some((c, here));
    }

    fn normalize(&mut self, file: &FileCtx<'_>, table: &DeTable<'_>) {
        // In file order, so a conflict is reported on the later line.
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let canonical = key_str(key);
            self.canonicals.push(canonical.to_string());
            let line = file.line(key.span().start);
            let variants: Vec<(&str, usize)> = match value.get_ref() {
                DeValue::String(s) => vec![(s.as_ref(), line)],
                DeValue::Array(items) => {
                    let mut v = Vec::new();
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) => {
                                v.push((s.as_ref(), file.line(item.span().start)))
                            }
                            other => self.err(
                                file,
                                file.line(item.span().start),
                                None,
                                format!(
                                    "normalize `{canonical}`: variants must be strings, found {}",
                                    other.type_str()
                                ),
                            ),
                        }
                    }
                    v
                }
                other => {
                    self.err(
                        file,
                        line,
                        None,
                        format!(
                            "normalize `{canonical}`: expected a list of variant spellings, found {}",
                            other.type_str()
                        ),
                    );
                    continue;
                }
            };
            for (variant, vline) in variants {
                let loc = SourceLoc {
                    file: file.path.to_path_buf(),
                    line: vline,
                };
                if let Some(existing) = self.synonyms.insert(variant, canonical) {
                    let first = self
                        .synonym_origin
                        .get(&super::normalize::basic_normalize(variant))
                        .map(|l| format!(" (at {l})"))
                        .unwrap_or_default();
                    self.err(
                        file,
                        vline,
                        None,
                        format!(
                            "normalize: `{variant}` is already mapped to `{existing}`{first}; a variant can have only one canonical form, remove one of them"
                        ),
                    );
                } else {
                    self.synonym_origin
                        .entry(super::normalize::basic_normalize(variant))
                        .or_insert(loc);
                }
            }
        }
    }

    fn intent(
        &mut self,
        file: &FileCtx<'_>,
        table: &DeTable<'_>,
        header_line: usize,
    ) -> Option<RawIntent> {
        // The name first, so every other error can mention it.
        let mut name: Option<(String, usize)> = None;
        let mut first_line = usize::MAX;
        for (key, value) in table.iter() {
            first_line = first_line.min(file.line(key.span().start));
            if key_str(key) == "name"
                && let DeValue::String(s) = value.get_ref()
            {
                name = Some((s.to_string(), file.line(key.span().start)));
            }
        }
        let start_line = if first_line == usize::MAX {
            header_line
        } else {
            first_line
        };
        let (name, name_line) = match name {
            Some(n) => n,
            None => {
                self.err(
                    file,
                    start_line,
                    None,
                    "intent without a `name`: add `name = \"...\"`".into(),
                );
                (format!("<unnamed at line {start_line}>"), start_line)
            }
        };
        let n = Some(name.as_str());
        if !name.starts_with("<unnamed")
            && (name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            self.err(
                file,
                name_line,
                n,
                "the name may contain only ASCII letters, digits, `_` and `-` (it is used in `intent:NAME` payloads)".into(),
            );
        }

        let mut intent = Intent {
            name: name.clone(),
            description: None,
            action: Action::Reply,
            priority: 0,
            keywords: Vec::new(),
            patterns: Vec::new(),
            exclude: Vec::new(),
            replies: Vec::new(),
            replies_en: Vec::new(),
            buttons: Vec::new(),
            queue: None,
            queue_priority: 0,
            channels: None,
            when: When::Always,
            kind: Kind::Topic,
            label: None,
            label_en: None,
            examples: Vec::new(),
            not_examples: Vec::new(),
            source: SourceLoc {
                file: file.path.to_path_buf(),
                line: name_line,
            },
            compiled: Compiled::default(),
        };
        let mut raw = RawIntent {
            intent: intent.clone(),
            keyword_lines: Vec::new(),
            queue_line: 0,
            action_set: false,
            reply_line: name_line,
            reply_field: false,
            action_invalid: false,
            trigger_line: name_line,
        };
        let mut reply_single = None;
        let mut reply_en_single = None;
        let mut queue_priority_line = 0;
        for (key, value) in table.iter() {
            let field = key_str(key);
            let line = file.line(key.span().start);
            match field {
                "name" => {
                    if self.string(file, n, field, value).is_none() {
                        // reported by string()
                    }
                }
                "description" => intent.description = self.string(file, n, field, value),
                "priority" => intent.priority = self.int(file, n, field, value).unwrap_or(0),
                "queue_priority" => {
                    intent.queue_priority = self.int(file, n, field, value).unwrap_or(0);
                    queue_priority_line = line;
                }
                "action" => {
                    raw.action_set = true;
                    if let Some(s) = self.string(file, n, field, value) {
                        match Action::parse(&s) {
                            Some(a) => intent.action = a,
                            None => {
                                raw.action_invalid = true;
                                self.err(
                                file,
                                line,
                                n,
                                format!("unknown action `{s}`; use one of reply, handoff, opt_out, opt_in, resolve"),
                            )
                            }
                        }
                    }
                }
                "when" => {
                    if let Some(s) = self.string(file, n, field, value) {
                        match When::parse(&s) {
                            Some(w) => intent.when = w,
                            None => self.err(
                                file,
                                line,
                                n,
                                format!("unknown `when` value `{s}`; use always, business_hours or after_hours"),
                            ),
                        }
                    }
                }
                "queue" => {
                    intent.queue = self.string(file, n, field, value);
                    raw.queue_line = line;
                }
                "label" => intent.label = self.string(file, n, field, value),
                "label_en" => intent.label_en = self.string(file, n, field, value),
                "kind" => {
                    if let Some(s) = self.string(file, n, field, value) {
                        match Kind::parse(&s) {
                            Some(k) => intent.kind = k,
                            None => self.err(
                                file,
                                line,
                                n,
                                format!("unknown `kind` `{s}`; use topic, small_talk or person"),
                            ),
                        }
                    }
                }
                "examples" | "not_examples" => {
                    for (text, eline) in self.strings(file, n, field, value) {
                        if text.trim().is_empty() {
                            self.err(
                                file,
                                eline,
                                n,
                                format!("an empty string in `{field}`; remove it"),
                            );
                            continue;
                        }
                        if field == "examples" {
                            intent.examples.push(text);
                            intent.compiled.example_lines.push(eline);
                        } else {
                            intent.not_examples.push(text);
                            intent.compiled.not_example_lines.push(eline);
                        }
                    }
                }
                "keywords" => {
                    raw.trigger_line = line;
                    for (kw, kline) in self.strings(file, n, field, value) {
                        intent.keywords.push(kw);
                        raw.keyword_lines.push(kline);
                    }
                }
                "patterns" | "exclude" => {
                    raw.trigger_line = line;
                    for (p, pline) in self.strings(file, n, field, value) {
                        match compile_pattern(&p) {
                            Ok(re) => {
                                if field == "patterns" {
                                    intent.compiled.patterns.push(re);
                                } else {
                                    intent.compiled.exclude.push(re);
                                }
                            }
                            Err(e) => self.err(
                                file,
                                pline,
                                n,
                                format!(
                                    "bad regex in `{field}` `{p}`: {}",
                                    one_line(&e.to_string())
                                ),
                            ),
                        }
                        if field == "patterns" {
                            intent.patterns.push(p);
                        } else {
                            intent.exclude.push(p);
                        }
                    }
                }
                "reply" | "reply_en" => {
                    raw.reply_line = line;
                    raw.reply_field |= field == "reply";
                    if let Some(s) = self.string(file, n, field, value)
                        && let Some(t) = self.template(file, n, line, field, &s)
                    {
                        if field == "reply" {
                            reply_single = Some(line);
                            intent.replies.push(t);
                        } else {
                            reply_en_single = Some(line);
                            intent.replies_en.push(t);
                        }
                    }
                }
                "replies" | "replies_en" => {
                    raw.reply_line = line;
                    raw.reply_field |= field == "replies";
                    if (field == "replies" && reply_single.is_some())
                        || (field == "replies_en" && reply_en_single.is_some())
                    {
                        self.err(
                            file,
                            line,
                            n,
                            format!(
                                "both `{}` and `{field}`: use only `{field}`",
                                field.trim_end_matches('s').replace("replie", "reply")
                            ),
                        );
                    }
                    for (s, rline) in self.strings(file, n, field, value) {
                        if let Some(t) = self.template(file, n, rline, field, &s) {
                            if field == "replies" {
                                intent.replies.push(t);
                            } else {
                                intent.replies_en.push(t);
                            }
                        }
                    }
                }
                "buttons" => self.buttons(file, n, value, &mut intent.buttons),
                "channels" => {
                    let mut list = Vec::new();
                    for (s, cline) in self.strings(file, n, field, value) {
                        match Channel::parse(&s) {
                            Some(c) => list.push(c),
                            None => self.err(
                                file,
                                cline,
                                n,
                                format!("unknown channel `{s}`; use whatsapp or instagram"),
                            ),
                        }
                    }
                    intent.channels = Some(list);
                }
                other => {
                    let hint = closest(other, INTENT_FIELDS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    self.err(
                        file,
                        line,
                        n,
                        format!(
                            "unknown field `{other}`{hint}; allowed fields: {}",
                            INTENT_FIELDS.join(", ")
                        ),
                    );
                }
            }
        }
        if queue_priority_line > 0
            && raw.queue_line == 0
            && !matches!(intent.action, Action::Handoff | Action::Reply)
        {
            raw.queue_line = queue_priority_line;
        }
        raw.intent = intent;
        Some(raw)
    }

    /// Phase two: checks that need all files.
    fn finish(&mut self, raw: RawIntent, names: &mut HashMap<String, SourceLoc>) -> Option<Intent> {
        let mut intent = raw.intent;
        let path = intent.source.file.clone();
        let err = |errors: &mut Vec<LoadError>, line: usize, msg: String, name: &str| {
            errors.push(LoadError {
                file: path.clone(),
                line,
                intent: Some(name.to_string()),
                message: msg,
            })
        };
        let name = intent.name.clone();
        if let Some(first) = names.get(&name) {
            err(
                &mut self.errors,
                intent.source.line,
                format!("duplicate intent name, first defined at {first}; rename one of them"),
                &name,
            );
        } else {
            names.insert(name.clone(), intent.source.clone());
        }
        if !raw.action_set {
            err(
                &mut self.errors,
                intent.source.line,
                "no `action`: add `action = \"reply\"` (or handoff, opt_out, opt_in, resolve)"
                    .into(),
                &name,
            );
        }
        // On a reply intent the queue is where a request for a person about
        // this topic goes (see `Kind::Person`).
        if !matches!(intent.action, Action::Handoff | Action::Reply) && raw.queue_line > 0 {
            err(
                &mut self.errors,
                raw.queue_line,
                format!(
                    "`queue`/`queue_priority` only apply to `action = \"handoff\"` (and to `reply`, for requests for a person about the topic); this intent is `{}`: remove them or change the action",
                    intent.action.as_str()
                ),
                &name,
            );
        }
        if raw.action_set
            && matches!(intent.action, Action::Reply | Action::Resolve)
            && intent.replies.is_empty()
            && !raw.reply_field
            && !raw.action_invalid
        {
            err(
                &mut self.errors,
                raw.reply_line,
                format!(
                    "`action = \"{}\"` needs something to say: add `reply = \"...\"` or `replies = [...]`",
                    intent.action.as_str()
                ),
                &name,
            );
        }
        if is_media_intent(&name) && intent.has_triggers() {
            err(
                &mut self.errors,
                raw.trigger_line,
                "media intents answer files, not words; remove their `keywords` and `patterns`"
                    .into(),
                &name,
            );
        }
        if name == FALLBACK_INTENT && intent.has_triggers() {
            err(
                &mut self.errors,
                raw.trigger_line,
                "the fallback intent answers when nothing matches; remove its `keywords` and `patterns`".into(),
                &name,
            );
        }
        for (kw, line) in intent.keywords.iter().zip(&raw.keyword_lines) {
            let norm = self.synonyms.normalize(kw);
            if norm.is_empty() {
                err(
                    &mut self.errors,
                    *line,
                    format!(
                        "keyword `{kw}` is empty after normalization (it has no letters or digits); remove it"
                    ),
                    &name,
                );
            }
            intent.compiled.keywords.push(norm);
        }
        intent.compiled.keyword_lines = raw.keyword_lines;
        Some(intent)
    }

    fn template(
        &mut self,
        file: &FileCtx<'_>,
        n: Option<&str>,
        line: usize,
        field: &str,
        s: &str,
    ) -> Option<ReplyTemplate> {
        match ReplyTemplate::parse(s, &self.opts.config_variables) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(file, line, n, format!("in `{field}`: {e}"));
                None
            }
        }
    }

    fn buttons(
        &mut self,
        file: &FileCtx<'_>,
        n: Option<&str>,
        value: &Item<'_>,
        out: &mut Vec<Button>,
    ) {
        let DeValue::Array(items) = value.get_ref() else {
            self.err(
                file,
                file.line(value.span().start),
                n,
                "`buttons` must be a list of tables: write `[[intent.buttons]]` with `label` and `payload`".into(),
            );
            return;
        };
        for item in items.iter() {
            let line = file.line(item.span().start);
            let DeValue::Table(t) = item.get_ref() else {
                self.err(
                    file,
                    line,
                    n,
                    "each button must be a table with `label` and `payload`".into(),
                );
                continue;
            };
            let (mut label, mut payload) = (None, None);
            let mut bline = line;
            for (key, v) in t.iter() {
                let kline = file.line(key.span().start);
                bline = bline.max(kline);
                match key_str(key) {
                    "label" => label = self.string(file, n, "label", v),
                    "payload" => payload = self.string(file, n, "payload", v),
                    other => self.err(
                        file,
                        kline,
                        n,
                        format!("unknown button field `{other}`; a button has only `label` and `payload`"),
                    ),
                }
            }
            match (label, payload) {
                (Some(title), Some(id)) => out.push(Button { id, title }),
                _ => self.err(
                    file,
                    bline,
                    n,
                    "a button needs both `label` and `payload`".into(),
                ),
            }
        }
    }

    fn string(
        &mut self,
        file: &FileCtx<'_>,
        n: Option<&str>,
        field: &str,
        value: &Item<'_>,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    file,
                    file.line(value.span().start),
                    n,
                    format!("`{field}` must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn int(
        &mut self,
        file: &FileCtx<'_>,
        n: Option<&str>,
        field: &str,
        value: &Item<'_>,
    ) -> Option<i32> {
        let line = file.line(value.span().start);
        match value.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let (neg, digits) = match digits.strip_prefix('-') {
                    Some(d) => (true, d.to_string()),
                    None => (false, digits.trim_start_matches('+').to_string()),
                };
                let digits = digits
                    .strip_prefix("0x")
                    .or_else(|| digits.strip_prefix("0o"))
                    .or_else(|| digits.strip_prefix("0b"))
                    .unwrap_or(&digits);
                match i64::from_str_radix(digits, i.radix())
                    .ok()
                    .and_then(|v| i32::try_from(if neg { -v } else { v }).ok())
                {
                    Some(v) => Some(v),
                    None => {
                        self.err(file, line, n, format!("`{field}` is out of range"));
                        None
                    }
                }
            }
            other => {
                self.err(
                    file,
                    line,
                    n,
                    format!("`{field}` must be an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn strings(
        &mut self,
        file: &FileCtx<'_>,
        n: Option<&str>,
        field: &str,
        value: &Item<'_>,
    ) -> Vec<(String, usize)> {
        let line = file.line(value.span().start);
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    let iline = file.line(item.span().start);
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), iline)),
                        other => self.err(
                            file,
                            iline,
                            n,
                            format!(
                                "`{field}` must contain only strings, found {}",
                                other.type_str()
                            ),
                        ),
                    }
                }
                out
            }
            DeValue::String(s) => vec![(s.to_string(), line)],
            other => {
                self.err(
                    file,
                    line,
                    n,
                    format!(
                        "`{field}` must be a list of strings, found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }
}

/// Compiles a rule pattern the way the matcher runs it: case-insensitive.
pub(crate) fn compile_pattern(p: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(p).case_insensitive(true).build()
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The allowed name closest to a misspelt one (edit distance ≤ 2).
fn closest<'a>(word: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (levenshtein(word, o), *o))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, o)| o)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn key_str<'a>(key: &'a Spanned<toml::de::DeString<'_>>) -> &'a str {
    key.get_ref()
}
