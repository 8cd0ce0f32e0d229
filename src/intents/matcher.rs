//! The compiled rule set and one-pass matching.
//!
//! A message is normalized once, then matched against all rules at once:
//!
//! - every keyword of every intent, and a required literal of each pattern
//!   (see below), go into one Aho-Corasick automaton, scanned once;
//! - patterns with a required literal run only when the automaton saw that
//!   literal; the few patterns without one are compiled into one
//!   [`regex::RegexSet`] that runs once per message.
//!
//! So the cost per message grows with the number of rules that are plausibly
//! relevant to it, not with the number of rules.
//!
//! Scoring: each keyword or pattern hit gives its intent a [`Score`] of
//! `(priority, matched length)`. An intent's score is its best hit; the highest
//! score wins, ties going to the intent defined first. Intents whose `exclude`
//! patterns match, whose `channels` do not include the message's channel or
//! whose `when` does not fit the time are skipped.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::RegexSet;

use super::normalize::SynonymMap;
use super::rules::{self, Confidence, FALLBACK_INTENT, Intent, LoadErrors, LoadOptions};
use super::understand::Trained;
use crate::channels::Channel;

/// Clitics that may follow a keyword (`garansi` matches `garansinya`).
pub const KEYWORD_SUFFIXES: &[&str] = &["nya", "lah", "kah", "pun", "ku", "mu"];

/// Payload prefix that selects an intent directly.
pub const PAYLOAD_PREFIX: &str = "intent:";

/// Circumstances of a message that filter intents (`channels`, `when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchContext {
    /// The channel the message came from; `None` ignores `channels` filters.
    pub channel: Option<Channel>,
    /// Whether the team is available now (for `when`).
    pub business_hours_open: bool,
}

impl Default for MatchContext {
    /// No channel, business hours open.
    fn default() -> MatchContext {
        MatchContext {
            channel: None,
            business_hours_open: true,
        }
    }
}

/// How good a hit is: higher priority first, then the longer match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score {
    /// The intent's priority.
    pub priority: i32,
    /// Length in bytes of the matched text.
    pub length: usize,
}

/// The winning intent for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The intent's name.
    pub intent: String,
    /// Its score.
    pub score: Score,
    /// The rule that matched, e.g. ``keyword `refund` `` or ``pattern #2 `...` ``.
    pub rule: String,
    /// The matched range in [`Match::normalized`].
    pub span: Range<usize>,
    /// The normalized message.
    pub normalized: String,
}

/// Why a candidate did or did not win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateStatus {
    /// It competed (the winner is the first eligible candidate).
    Eligible,
    /// An `exclude` pattern vetoed the intent (the rule text is given).
    Excluded(String),
    /// The intent's `channels` do not include the message's channel.
    WrongChannel,
    /// The intent's `when` does not fit business hours.
    WrongTime,
}

/// One rule hit, for [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The intent's name.
    pub intent: String,
    /// Score of this hit.
    pub score: Score,
    /// The rule that matched.
    pub rule: String,
    /// The matched range of the normalized text.
    pub span: Range<usize>,
    /// The matched text.
    pub text: String,
    /// Whether it could win.
    pub status: CandidateStatus,
}

/// Everything that matched a message, best first, and the winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The normalized message.
    pub normalized: String,
    /// Every hit of every intent, sorted by score (best first).
    pub candidates: Vec<Candidate>,
    /// What [`RuleSet::classify`] returns.
    pub winner: Option<Match>,
}

/// Which rule of an intent hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleRef {
    Keyword(u32),
    Pattern(u32),
}

/// One keyword or pattern hit.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) intent: u32,
    pub(super) rule: RuleRef,
    pub(super) span: Range<usize>,
}

/// One string in the automaton: a keyword of some intents and/or a required
/// literal of some patterns.
#[derive(Debug, Default)]
struct AcEntry {
    /// `(intent, keyword index)`.
    keywords: Vec<(u32, u32)>,
    /// Global pattern ids.
    patterns: Vec<u32>,
}

/// A loaded, compiled set of intent rules. Immutable; share it in an `Arc`.
#[derive(Debug)]
pub struct RuleSet {
    intents: Vec<Intent>,
    by_name: HashMap<String, usize>,
    synonyms: SynonymMap,
    fallback: Option<usize>,
    automaton: Option<AhoCorasick>,
    entries: Vec<AcEntry>,
    /// Global pattern id → (intent, pattern index).
    patterns: Vec<(u32, u32)>,
    unfiltered: RegexSet,
    unfiltered_ids: Vec<u32>,
    files: Vec<PathBuf>,
    /// The classifier trained from the examples (none without examples).
    pub(super) trained: Option<Trained>,
    /// The confidence bands.
    pub(super) confidence: Confidence,
}

impl RuleSet {
    /// Loads every `*.toml` file of `dir` (in name order) and compiles the rules.
    ///
    /// All problems are collected into the error, each with `file:line`.
    pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<RuleSet, LoadErrors> {
        let parsed = rules::parse_dir(dir, opts)?;
        RuleSet::build(parsed)
    }

    /// Like [`RuleSet::load_dir`] for rule files given as `(path, contents)`, in
    /// that order (the path is only used in messages). For tests and tools.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        opts: &LoadOptions,
    ) -> Result<RuleSet, LoadErrors> {
        let parsed = rules::parse_sources(sources, opts)?;
        RuleSet::build(parsed)
    }

    fn build(parsed: rules::Parsed) -> Result<RuleSet, LoadErrors> {
        let rules::Parsed {
            synonyms,
            intents,
            files,
            confidence,
        } = parsed;
        let mut by_name = HashMap::with_capacity(intents.len());
        for (i, intent) in intents.iter().enumerate() {
            by_name.insert(intent.name.clone(), i);
        }
        let fallback = by_name.get(FALLBACK_INTENT).copied();

        let mut index: HashMap<String, usize> = HashMap::new();
        let mut strings: Vec<String> = Vec::new();
        let mut entries: Vec<AcEntry> = Vec::new();
        let mut entry_for =
            |s: &str, strings: &mut Vec<String>, entries: &mut Vec<AcEntry>| -> usize {
                *index.entry(s.to_string()).or_insert_with(|| {
                    strings.push(s.to_string());
                    entries.push(AcEntry::default());
                    entries.len() - 1
                })
            };
        let mut patterns = Vec::new();
        let mut unfiltered_src = Vec::new();
        let mut unfiltered_ids = Vec::new();
        for (i, intent) in intents.iter().enumerate() {
            for (k, kw) in intent.compiled.keywords.iter().enumerate() {
                if kw.is_empty() {
                    continue;
                }
                let e = entry_for(kw, &mut strings, &mut entries);
                entries[e].keywords.push((i as u32, k as u32));
            }
            for (p, source) in intent.patterns.iter().enumerate() {
                let id = patterns.len() as u32;
                patterns.push((i as u32, p as u32));
                match required_literals(source) {
                    Some(lits) => {
                        for lit in lits {
                            let e = entry_for(&lit, &mut strings, &mut entries);
                            entries[e].patterns.push(id);
                        }
                    }
                    None => {
                        unfiltered_src.push(intent.compiled.patterns[p].as_str().to_string());
                        unfiltered_ids.push(id);
                    }
                }
            }
        }
        let automaton = if strings.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&strings)
                    .map_err(|e| internal_error(&files, format!("keyword automaton: {e}")))?,
            )
        };
        let unfiltered = regex::RegexSetBuilder::new(&unfiltered_src)
            .case_insensitive(true)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| internal_error(&files, format!("pattern set: {e}")))?;
        let trained = Trained::from_intents(&intents, &synonyms, fallback, |_, _| true);
        Ok(RuleSet {
            intents,
            by_name,
            synonyms,
            fallback,
            automaton,
            entries,
            patterns,
            unfiltered,
            unfiltered_ids,
            files,
            trained,
            confidence,
        })
    }

    /// All intents, in file order.
    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    /// The intent called `name`.
    pub fn get(&self, name: &str) -> Option<&Intent> {
        self.by_name.get(name).map(|&i| &self.intents[i])
    }

    /// The intent selected by a button/quick-reply payload `intent:NAME`.
    pub fn by_payload(&self, payload: &str) -> Option<&Intent> {
        self.get(payload.trim().strip_prefix(PAYLOAD_PREFIX)?)
    }

    /// The `fallback` intent, used when [`RuleSet::classify`] returns `None`.
    pub fn fallback(&self) -> Option<&Intent> {
        self.fallback.map(|i| &self.intents[i])
    }

    /// The confidence bands (the `[confidence]` table or the defaults).
    pub fn confidence(&self) -> Confidence {
        self.confidence
    }

    /// Whether a classifier was trained (some intent has `examples`).
    pub fn has_model(&self) -> bool {
        self.trained.is_some()
    }

    /// The rule files this set was loaded from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The synonym map of the `[normalize]` tables.
    pub(crate) fn synonyms(&self) -> &SynonymMap {
        &self.synonyms
    }

    /// The index of the `fallback` intent.
    pub(crate) fn fallback_index(&self) -> Option<usize> {
        self.fallback
    }

    /// Normalizes a message the way matching does (with this set's synonyms).
    pub fn normalize(&self, text: &str) -> String {
        self.synonyms.normalize(text)
    }

    /// The winning *rule* for `text`, or `None` (the caller then uses the
    /// fallback). Rules only: [`RuleSet::understand`] combines them with the
    /// classifier and is what answers customers.
    pub fn classify(&self, text: &str, ctx: &MatchContext) -> Option<Match> {
        let normalized = self.normalize(text);
        let hits = self.hits(&normalized);
        let (hit, score) = self.winner(&hits, &normalized, ctx)?;
        Some(Match {
            intent: self.intents[hit.intent as usize].name.clone(),
            score,
            rule: self.describe(hit.intent, hit.rule),
            span: hit.span.clone(),
            normalized,
        })
    }

    /// Every hit for `text` with its status, and the winner.
    pub fn explain(&self, text: &str, ctx: &MatchContext) -> Explanation {
        let normalized = self.normalize(text);
        let hits = self.hits(&normalized);
        let winner = self
            .winner(&hits, &normalized, ctx)
            .map(|(hit, score)| Match {
                intent: self.intents[hit.intent as usize].name.clone(),
                score,
                rule: self.describe(hit.intent, hit.rule),
                span: hit.span.clone(),
                normalized: normalized.clone(),
            });
        let mut candidates: Vec<(usize, Candidate)> = hits
            .iter()
            .map(|h| {
                let intent = &self.intents[h.intent as usize];
                (
                    h.intent as usize,
                    Candidate {
                        intent: intent.name.clone(),
                        score: self.score(h),
                        rule: self.describe(h.intent, h.rule),
                        span: h.span.clone(),
                        text: normalized[h.span.clone()].to_string(),
                        status: self.status(intent, &normalized, ctx),
                    },
                )
            })
            .collect();
        candidates.sort_by(|(ia, a), (ib, b)| b.score.cmp(&a.score).then(ia.cmp(ib)));
        Explanation {
            normalized,
            candidates: candidates.into_iter().map(|(_, c)| c).collect(),
            winner,
        }
    }

    pub(super) fn score(&self, hit: &Hit) -> Score {
        Score {
            priority: self.intents[hit.intent as usize].priority,
            length: hit.span.len(),
        }
    }

    pub(super) fn status(
        &self,
        intent: &Intent,
        normalized: &str,
        ctx: &MatchContext,
    ) -> CandidateStatus {
        if !intent.allows_channel(ctx.channel) {
            return CandidateStatus::WrongChannel;
        }
        if !intent.when.allows(ctx.business_hours_open) {
            return CandidateStatus::WrongTime;
        }
        if let Some(i) = intent
            .compiled
            .exclude
            .iter()
            .position(|re| re.is_match(normalized))
        {
            return CandidateStatus::Excluded(format!(
                "exclude #{} `{}`",
                i + 1,
                intent.exclude[i]
            ));
        }
        CandidateStatus::Eligible
    }

    /// The best eligible hit.
    pub(super) fn winner<'h>(
        &self,
        hits: &'h [Hit],
        normalized: &str,
        ctx: &MatchContext,
    ) -> Option<(&'h Hit, Score)> {
        // Best hit per intent.
        let mut best: Vec<(&Hit, Score)> = Vec::new();
        for hit in hits {
            let score = self.score(hit);
            match best.iter_mut().find(|(h, _)| h.intent == hit.intent) {
                Some(entry) if entry.1 < score => *entry = (hit, score),
                Some(_) => {}
                None => best.push((hit, score)),
            }
        }
        best.sort_by(|(ha, a), (hb, b)| b.cmp(a).then(ha.intent.cmp(&hb.intent)));
        best.into_iter().find(|(h, _)| {
            self.status(&self.intents[h.intent as usize], normalized, ctx)
                == CandidateStatus::Eligible
        })
    }

    pub(super) fn describe(&self, intent: u32, rule: RuleRef) -> String {
        let intent = &self.intents[intent as usize];
        match rule {
            RuleRef::Keyword(k) => format!("keyword `{}`", intent.keywords[k as usize]),
            RuleRef::Pattern(p) => format!("pattern #{} `{}`", p + 1, intent.patterns[p as usize]),
        }
    }

    /// All keyword and pattern hits in `normalized`.
    pub(super) fn hits(&self, normalized: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut candidates: Vec<u32> = Vec::new();
        let bytes = normalized.as_bytes();
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(normalized) {
                let entry = &self.entries[m.pattern().as_usize()];
                candidates.extend_from_slice(&entry.patterns);
                if !entry.keywords.is_empty() && on_word_boundaries(bytes, m.start(), m.end()) {
                    for &(intent, k) in &entry.keywords {
                        hits.push(Hit {
                            intent,
                            rule: RuleRef::Keyword(k),
                            span: m.start()..m.end(),
                        });
                    }
                }
            }
        }
        if !self.unfiltered_ids.is_empty() {
            for i in self.unfiltered.matches(normalized).iter() {
                candidates.push(self.unfiltered_ids[i]);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        for id in candidates {
            let (intent, p) = self.patterns[id as usize];
            if let Some(m) =
                self.intents[intent as usize].compiled.patterns[p as usize].find(normalized)
            {
                hits.push(Hit {
                    intent,
                    rule: RuleRef::Pattern(p),
                    span: m.range(),
                });
            }
        }
        hits
    }
}

fn internal_error(files: &[PathBuf], message: String) -> LoadErrors {
    LoadErrors(vec![rules::LoadError {
        file: files.first().cloned().unwrap_or_default(),
        line: 0,
        intent: None,
        message,
    }])
}

/// Whether `start..end` is a whole word (optionally followed by a clitic from
/// [`KEYWORD_SUFFIXES`]) of the normalized text.
fn on_word_boundaries(text: &[u8], start: usize, end: usize) -> bool {
    if start > 0 && text[start - 1] != b' ' {
        return false;
    }
    if end == text.len() || text[end] == b' ' {
        return true;
    }
    let rest = &text[end..];
    KEYWORD_SUFFIXES
        .iter()
        .any(|s| rest.starts_with(s.as_bytes()) && (rest.len() == s.len() || rest[s.len()] == b' '))
}

/// A set of literals one of which occurs in every match of the regex `pattern`
/// (matched against lowercase normalized text), or `None` when no useful set
/// can be found. Conservative: only top-level literal runs and top-level groups
/// that are plain alternations of literals are considered.
pub(crate) fn required_literals(pattern: &str) -> Option<Vec<String>> {
    if pattern.contains("(?x") || pattern.contains("(?-u") {
        return None;
    }
    let chars: Vec<char> = pattern.chars().collect();
    let n = chars.len();
    let mut factors: Vec<Vec<String>> = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, factors: &mut Vec<Vec<String>>| {
        if run.chars().any(char::is_alphanumeric) {
            factors.push(vec![run.clone()]);
        }
        run.clear();
    };
    let optional_at = |i: usize| -> bool {
        match chars.get(i) {
            Some('?') | Some('*') => true,
            Some('{') => {
                let rest: String = chars[i + 1..].iter().take_while(|c| **c != '}').collect();
                let min = rest.split(',').next().unwrap_or("").trim();
                min.is_empty() || min.parse::<u32>().map(|m| m == 0).unwrap_or(true)
            }
            _ => false,
        }
    };
    let mut i = 0;
    while i < n {
        let c = chars[i];
        match c {
            '\\' => {
                flush(&mut run, &mut factors);
                i += 2;
                continue;
            }
            '[' => {
                flush(&mut run, &mut factors);
                i = class_end(&chars, i)? + 1;
                continue;
            }
            '(' => {
                flush(&mut run, &mut factors);
                let end = group_end(&chars, i)?;
                if !optional_at(end + 1) {
                    let content: String = chars[i + 1..end].iter().collect();
                    if let Some(alts) = plain_alternation(&content) {
                        factors.push(alts);
                    }
                }
                i = end + 1;
                continue;
            }
            '|' => return None,
            '{' => {
                flush(&mut run, &mut factors);
                while i < n && chars[i] != '}' {
                    i += 1;
                }
            }
            c if c.is_alphanumeric() || c == ' ' => {
                if optional_at(i + 1) {
                    flush(&mut run, &mut factors);
                } else {
                    run.extend(c.to_lowercase());
                    if chars.get(i + 1) == Some(&'+') {
                        flush(&mut run, &mut factors);
                    }
                }
            }
            _ => flush(&mut run, &mut factors),
        }
        i += 1;
    }
    flush(&mut run, &mut factors);
    let min_len = |f: &Vec<String>| {
        f.iter()
            .map(|s| s.trim().chars().count())
            .min()
            .unwrap_or(0)
    };
    let best = factors
        .into_iter()
        .max_by(|a, b| min_len(a).cmp(&min_len(b)).then(b.len().cmp(&a.len())))?;
    (min_len(&best) >= 2).then_some(best)
}

/// The alternatives of a group body like `?:refund|retur|kembali dana`, when it
/// is nothing but literal words.
fn plain_alternation(content: &str) -> Option<Vec<String>> {
    let body = if let Some(rest) = content.strip_prefix("?:") {
        rest
    } else if content.starts_with("?P<") || content.starts_with("?<") {
        &content[content.find('>')? + 1..]
    } else if content.starts_with('?') {
        return None;
    } else {
        content
    };
    if !body
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '|')
    {
        return None;
    }
    let alts: Vec<String> = body.split('|').map(str::to_lowercase).collect();
    if alts.iter().any(|a| !a.chars().any(char::is_alphanumeric)) {
        return None;
    }
    Some(alts)
}

/// Index of the `]` closing the class opened at `start`.
fn class_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    let mut depth = 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the `)` closing the group opened at `start`.
fn group_end(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => i = class_end(chars, i)?,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
