//! Tools for rule authors: `check`, `explain` and `test`.
//!
//! Each tool writes a human-readable report (or JSON) to `out` and returns the
//! process exit code; the CLI wires them into subcommands.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::evaluation::{self, Report};
use super::matcher::{CandidateStatus, MatchContext, RuleSet};
use super::rules::{FALLBACK_INTENT, Intent, Kind, LoadOptions};
use super::understand::{Decision, NONE_LABEL};
use crate::channels::Channel;

pub use super::evaluation::evaluate;

/// Fewer examples than this on an intent is a warning (40 are recommended).
pub const MIN_EXAMPLES: usize = 20;

/// WhatsApp's limit on a reply button's label.
const BUTTON_LABEL_MAX: usize = 20;

/// A warning from [`check`]: the rules load, but something looks wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `file:line` of the rule concerned.
    pub location: String,
    /// The intent concerned.
    pub intent: String,
    /// What looks wrong.
    pub message: String,
}

/// Validates the rules in `path`: prints every error (exit 1) or the warnings
/// (exit 0): intents or keywords that can never win, keywords claimed by two
/// intents with the same priority, buttons that WhatsApp would reject,
/// examples understood as another intent, intents with too few examples.
pub fn check(path: &Path, opts: &LoadOptions, out: &mut dyn Write) -> anyhow::Result<i32> {
    let rules = match RuleSet::load_dir(path, opts) {
        Ok(r) => r,
        Err(errors) => {
            write!(out, "{errors}")?;
            return Ok(1);
        }
    };
    let warnings = warnings(&rules);
    for w in &warnings {
        writeln!(
            out,
            "warning: {}: intent `{}`: {}",
            w.location, w.intent, w.message
        )?;
    }
    let examples: usize = rules.intents().iter().map(|i| i.examples.len()).sum();
    writeln!(
        out,
        "ok: {} intents from {} files, {examples} examples, {} warning{}",
        rules.intents().len(),
        rules.files().len(),
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    )?;
    Ok(0)
}

/// Every context a message can arrive in, for reachability checks.
fn all_contexts() -> Vec<MatchContext> {
    let mut v = Vec::new();
    for channel in [None, Some(Channel::WhatsApp), Some(Channel::Instagram)] {
        for business_hours_open in [true, false] {
            v.push(MatchContext {
                channel,
                business_hours_open,
            });
        }
    }
    v
}

/// The warnings [`check`] prints.
pub fn warnings(rules: &RuleSet) -> Vec<Warning> {
    let mut out = Vec::new();
    let contexts = all_contexts();
    let loc = |i: &Intent, line: usize| format!("{}:{}", i.source.file.display(), line);

    // Keywords claimed by two intents at the same priority.
    let mut claimed: HashMap<(&str, i32), Vec<&Intent>> = HashMap::new();
    for intent in rules.intents() {
        for kw in &intent.compiled.keywords {
            let owners = claimed.entry((kw.as_str(), intent.priority)).or_default();
            if !owners.iter().any(|o| o.name == intent.name) {
                owners.push(intent);
            }
        }
    }
    let mut shared: Vec<_> = claimed.into_iter().filter(|(_, o)| o.len() > 1).collect();
    shared.sort_by(|a, b| a.0.cmp(&b.0));
    for ((kw, priority), owners) in shared {
        let names: Vec<String> = owners.iter().map(|o| format!("`{}`", o.name)).collect();
        out.push(Warning {
            location: owners[1].source.to_string(),
            intent: owners[1].name.clone(),
            message: format!(
                "keyword `{kw}` is claimed by {} at the same priority {priority}; the winner depends on definition order: give one a higher priority or remove the keyword",
                names.join(" and ")
            ),
        });
    }

    for intent in rules.intents() {
        if intent.name == super::rules::FALLBACK_INTENT
            || super::rules::is_media_intent(&intent.name)
        {
            continue;
        }
        if !intent.has_triggers() && intent.examples.is_empty() {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: format!(
                    "no keywords or patterns: only a button payload `intent:{}` can select it",
                    intent.name
                ),
            });
            continue;
        }
        if matches!(&intent.channels, Some(c) if c.is_empty()) {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: "`channels = []`: it can never match; remove `channels` to allow all"
                    .into(),
            });
        }
        // Keywords that never win even when they are the whole message.
        let mut dead = 0;
        for (k, kw) in intent.keywords.iter().enumerate() {
            let wins = contexts.iter().any(|ctx| {
                rules
                    .classify(kw, ctx)
                    .is_some_and(|m| m.intent == intent.name)
            });
            if !wins {
                dead += 1;
                let why = rules
                    .explain(kw, &contexts[0])
                    .candidates
                    .into_iter()
                    .find(|c| c.intent != intent.name || c.status != CandidateStatus::Eligible)
                    .map(|c| match c.status {
                        CandidateStatus::Excluded(rule) if c.intent == intent.name => {
                            format!("its own {rule} vetoes it")
                        }
                        _ => format!(
                            "`{}` (priority {}) wins with {}",
                            c.intent, c.score.priority, c.rule
                        ),
                    })
                    .unwrap_or_else(|| "it does not match its own text".into());
                out.push(Warning {
                    location: loc(intent, intent.compiled.keyword_lines[k]),
                    intent: intent.name.clone(),
                    message: format!("keyword `{kw}` can never win: {why}"),
                });
            }
        }
        if intent.has_triggers() && intent.patterns.is_empty() && dead == intent.keywords.len() {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: "shadowed: none of its keywords can ever win and it has no patterns; raise its priority or remove it".into(),
            });
        }
        // Patterns using a spelling normalization rewrites can never match it.
        for p in &intent.patterns {
            let words: Vec<String> = p
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic))
                .map(str::to_lowercase)
                .collect();
            // Normalize the words in context, so phrases (`customer service`) count.
            let normalized = rules.normalize(&p.replace(|c: char| !c.is_alphanumeric(), " "));
            let kept: std::collections::HashSet<&str> = normalized.split(' ').collect();
            let mut reported = std::collections::HashSet::new();
            for word in words {
                if kept.contains(word.as_str()) || !reported.insert(word.clone()) {
                    continue;
                }
                let norm = rules.normalize(&word);
                if norm != word {
                    out.push(Warning {
                        location: intent.source.to_string(),
                        intent: intent.name.clone(),
                        message: format!(
                            "pattern `{p}` uses `{word}`, which normalization rewrites to `{norm}`; write `{norm}` instead"
                        ),
                    });
                }
            }
        }
        for b in &intent.buttons {
            if b.title.chars().count() > 20 {
                out.push(Warning {
                    location: intent.source.to_string(),
                    intent: intent.name.clone(),
                    message: format!(
                        "button label `{}` is longer than 20 characters (WhatsApp rejects it)",
                        b.title
                    ),
                });
            }
            if let Some(target) = b.id.strip_prefix(super::matcher::PAYLOAD_PREFIX)
                && rules.get(target).is_none()
            {
                out.push(Warning {
                    location: intent.source.to_string(),
                    intent: intent.name.clone(),
                    message: format!("button payload `{}` names no intent", b.id),
                });
            }
        }
        if intent.buttons.len() > 3 {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: "more than 3 buttons: WhatsApp reply buttons allow at most 3".into(),
            });
        }
    }
    out.extend(example_warnings(rules));
    out
}

/// Warnings about examples: too few, duplicated, understood as another intent;
/// not-examples still understood as their intent; clarify labels.
fn example_warnings(rules: &RuleSet) -> Vec<Warning> {
    let mut out = Vec::new();
    if !rules.has_model() {
        return out;
    }
    let ctx = MatchContext::default();
    let loc = |i: &Intent, line: usize| format!("{}:{}", i.source.file.display(), line);
    let label_of = |i: &Intent| {
        if i.name == FALLBACK_INTENT {
            NONE_LABEL.to_string()
        } else {
            i.name.clone()
        }
    };
    let mut seen: HashMap<String, (&Intent, usize)> = HashMap::new();
    for intent in rules.intents() {
        let n = intent.examples.len();
        if intent.name == FALLBACK_INTENT && n == 0 {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: "no `examples`: the model has no out-of-scope class, so chit-chat and spam are forced onto some intent; add examples of messages you do not handle".into(),
            });
        } else if n == 0 && intent.has_triggers() {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: "no `examples`: only its keywords and patterns can select it; add examples of how customers ask".into(),
            });
        } else if n > 0 && n < MIN_EXAMPLES {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: format!(
                    "only {n} example{}: add at least {MIN_EXAMPLES} varied ones (40 recommended), in the ways customers really write",
                    if n == 1 { "" } else { "s" }
                ),
            });
        }
        if n > 0
            && intent.kind == Kind::Topic
            && intent.name != FALLBACK_INTENT
            && intent.label.is_none()
        {
            out.push(Warning {
                location: intent.source.to_string(),
                intent: intent.name.clone(),
                message: format!(
                    "no `label`: a clarifying question offering this intent shows `{}` on its button; add `label = \"...\"`",
                    intent.name
                ),
            });
        }
        for label in [&intent.label, &intent.label_en].into_iter().flatten() {
            if label.chars().count() > BUTTON_LABEL_MAX {
                out.push(Warning {
                    location: intent.source.to_string(),
                    intent: intent.name.clone(),
                    message: format!(
                        "label `{label}` is longer than {BUTTON_LABEL_MAX} characters (WhatsApp rejects it)"
                    ),
                });
            }
        }
        let want = label_of(intent);
        for (e, text) in intent.examples.iter().enumerate() {
            let line = intent.compiled.example_lines[e];
            let key = rules.normalize(text);
            match seen.get(&key) {
                Some((other, _)) if other.name != intent.name => out.push(Warning {
                    location: loc(intent, line),
                    intent: intent.name.clone(),
                    message: format!(
                        "example `{text}` is also an example of `{}`: one message cannot teach two intents; keep it in one",
                        other.name
                    ),
                }),
                Some(_) => out.push(Warning {
                    location: loc(intent, line),
                    intent: intent.name.clone(),
                    message: format!("example `{text}` is repeated (after normalization); remove one"),
                }),
                None => {
                    seen.insert(key, (intent, line));
                }
            }
            let u = rules.understand(text, &ctx);
            if u.predicted() != want {
                let why = match &u.explanation.rule {
                    Some(m) if m.intent != intent.name => {
                        format!("the {} of `{}` matches it", m.rule, m.intent)
                    }
                    _ => format!("{}", u.explanation.reason),
                };
                out.push(Warning {
                    location: loc(intent, line),
                    intent: intent.name.clone(),
                    message: format!(
                        "example `{text}` is understood as `{}` ({}, {:.0}%): {why}",
                        u.predicted(),
                        u.outcome(),
                        u.confidence() * 100.0
                    ),
                });
            }
        }
        for (e, text) in intent.not_examples.iter().enumerate() {
            let line = intent.compiled.not_example_lines[e];
            let u = rules.understand(text, &ctx);
            if u.predicted() == want {
                out.push(Warning {
                    location: loc(intent, line),
                    intent: intent.name.clone(),
                    message: format!(
                        "not-example `{text}` is still understood as `{want}` ({}, {:.0}%): add examples of what it really is to the right intent",
                        u.outcome(),
                        u.confidence() * 100.0
                    ),
                });
            }
        }
    }
    out
}

/// Shows how `message` is understood: the normalized text, every rule hit
/// with its span, the classifier's top three, the combination, the numbers
/// found, the decision and why. Exit 1 when the rules do not load.
pub fn explain(
    path: &Path,
    opts: &LoadOptions,
    message: &str,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = match RuleSet::load_dir(path, opts) {
        Ok(r) => r,
        Err(errors) => {
            write!(out, "{errors}")?;
            return Ok(1);
        }
    };
    let ctx = MatchContext::default();
    let e = rules.explain(message, &ctx);
    let u = rules.understand(message, &ctx);
    writeln!(out, "message:    {message}")?;
    writeln!(out, "normalized: {}", e.normalized)?;
    writeln!(
        out,
        "language:   {:?}",
        super::language::detect_language(message)
    )?;
    if e.candidates.is_empty() {
        writeln!(out, "rules:      no match")?;
    } else {
        writeln!(out, "rules (best first):")?;
        for c in &e.candidates {
            let status = match &c.status {
                CandidateStatus::Eligible => String::new(),
                CandidateStatus::Excluded(rule) => format!("  [vetoed by {rule}]"),
                CandidateStatus::WrongChannel => "  [not on this channel]".into(),
                CandidateStatus::WrongTime => "  [not at this time]".into(),
            };
            writeln!(
                out,
                "  {:<16} priority {:>4}  {}  at {}..{} `{}`{status}",
                c.intent, c.score.priority, c.rule, c.span.start, c.span.end, c.text
            )?;
        }
    }
    match &e.winner {
        Some(m) => writeln!(out, "rule winner: {} ({})", m.intent, m.rule)?,
        None => writeln!(out, "rule winner: none")?,
    }
    let ev = &u.explanation;
    if ev.model.is_empty() {
        writeln!(out, "model:      none (no intent has examples)")?;
    } else {
        writeln!(out, "model (top 3):    {}", scored_list(&ev.model))?;
        writeln!(out, "combined (top 3): {}", scored_list(&ev.combined))?;
    }
    if !u.entities.is_empty() {
        writeln!(out, "numbers:")?;
        for en in &u.entities {
            let courier = en
                .courier
                .map(|c| format!(" ({})", c.name()))
                .unwrap_or_default();
            writeln!(out, "  {:<16} {}{courier}", en.kind.as_str(), en.value)?;
        }
    }
    let decision = match &u.decision {
        Decision::Answer {
            intent,
            confidence,
            topic,
        } => {
            let topic = topic
                .as_ref()
                .map(|t| format!(", about `{t}`"))
                .unwrap_or_default();
            format!("answer `{intent}`{topic} ({:.0}%)", confidence * 100.0)
        }
        Decision::Clarify { kind, candidates } => {
            let what = match kind {
                super::understand::ClarifyKind::Topics => "ask which topic",
                super::understand::ClarifyKind::ConfirmOptOut => "confirm the opt-out",
            };
            format!("{what}: {}", scored_list(candidates))
        }
        Decision::Fallback { confidence } => format!(
            "fallback ({:.0}%) -> {}",
            confidence * 100.0,
            rules
                .fallback()
                .map(|f| f.name.as_str())
                .unwrap_or("(no fallback intent)")
        ),
    };
    writeln!(out, "decision:   {decision}")?;
    writeln!(out, "why:        {}", ev.reason)?;
    Ok(0)
}

fn scored_list(list: &[super::understand::Scored]) -> String {
    list.iter()
        .map(|s| format!("{} {:.0}%", s.intent, s.confidence * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `balas intents test` measures.
#[derive(Debug, Clone, Copy)]
pub enum TestSource<'a> {
    /// A labelled dataset file.
    Dataset(&'a Path),
    /// K-fold cross-validation on the rule files' own examples.
    CrossValidation(usize),
}

/// Options of `balas intents test`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestOptions {
    /// Exit 1 when accuracy is below this.
    pub min_accuracy: Option<f64>,
    /// Print JSON instead of a report.
    pub json: bool,
    /// Also list every misclassified message.
    pub errors: bool,
}

/// Measures the rules in `rules_path` on a dataset or by cross-validation and
/// prints accuracy, per-intent precision/recall/F1, the confusion matrix, the
/// confidently-wrong, clarify and fallback rates (and with `errors` the
/// misclassified messages), or a JSON report. Exit 1 when the rules do not load
/// or accuracy is below `min_accuracy`.
pub fn test(
    rules_path: &Path,
    opts: &LoadOptions,
    source: TestSource<'_>,
    options: TestOptions,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = match RuleSet::load_dir(rules_path, opts) {
        Ok(r) => r,
        Err(errors) => {
            write!(out, "{errors}")?;
            return Ok(1);
        }
    };
    let report = match source {
        TestSource::Dataset(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the dataset {}", path.display()))?;
            evaluation::evaluate(&rules, &text).with_context(|| format!("in {}", path.display()))?
        }
        TestSource::CrossValidation(k) => evaluation::cross_validate(&rules, k)?,
    };
    let below = options
        .min_accuracy
        .is_some_and(|min| report.accuracy < min);
    if options.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(i32::from(below));
    }
    if let TestSource::CrossValidation(k) = source {
        writeln!(
            out,
            "{k}-fold cross-validation on the examples of {}",
            rules_path.display()
        )?;
    }
    write_report(&report, out)?;
    if options.errors {
        let wrong: Vec<_> = report.examples.iter().filter(|e| !e.correct()).collect();
        if !wrong.is_empty() {
            writeln!(out, "\nmisclassified:")?;
            for e in wrong {
                writeln!(
                    out,
                    "  expected {:<15} got {:<15} {:<8} {:>4.0}%  {:?}",
                    e.expected,
                    e.predicted,
                    e.outcome,
                    e.confidence * 100.0,
                    e.text
                )?;
            }
        }
    }
    if let Some(min) = options.min_accuracy {
        if below {
            writeln!(
                out,
                "\nFAIL: accuracy below the minimum {:.1}%",
                min * 100.0
            )?;
        } else {
            writeln!(out, "\nok: accuracy at least {:.1}%", min * 100.0)?;
        }
    }
    Ok(i32::from(below))
}

/// The aggregate part of a report: no message text, so it can be shown for a
/// held-out set.
pub fn write_report(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let n = report.examples.len();
    let count = |rate: f64| (rate * n as f64).round() as usize;
    writeln!(
        out,
        "accuracy: {:.1}% ({}/{n})",
        report.accuracy * 100.0,
        count(report.accuracy)
    )?;
    writeln!(
        out,
        "confidently wrong: {:.1}% ({})   clarify: {:.1}% ({})   fallback: {:.1}% ({})",
        report.confidently_wrong * 100.0,
        count(report.confidently_wrong),
        report.clarify_rate * 100.0,
        count(report.clarify_rate),
        report.fallback_rate * 100.0,
        count(report.fallback_rate),
    )?;
    writeln!(
        out,
        "\n{:<16} {:>7} {:>9} {:>7} {:>6}",
        "intent", "support", "precision", "recall", "F1"
    )?;
    for (label, s) in &report.per_intent {
        writeln!(
            out,
            "{label:<16} {:>7} {:>8.1}% {:>6.1}% {:>5.1}%",
            s.support,
            s.precision * 100.0,
            s.recall * 100.0,
            s.f1 * 100.0
        )?;
    }
    let labels: Vec<&String> = report.per_intent.keys().collect();
    writeln!(
        out,
        "\nconfusion matrix (rows: expected, columns: predicted)"
    )?;
    write!(out, "{:<16}", "")?;
    for i in 0..labels.len() {
        write!(out, " {:>3}", i + 1)?;
    }
    writeln!(out)?;
    for (i, expected) in labels.iter().enumerate() {
        write!(out, "{:>2} {:<13}", i + 1, truncate(expected, 13))?;
        let row = report.confusion.get(*expected);
        for predicted in &labels {
            match row.and_then(|r| r.get(*predicted)) {
                Some(c) => write!(out, " {c:>3}")?,
                None => write!(out, " {:>3}", ".")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
