//! Tools for rule authors: `check`, `explain` and `test_dataset`.
//!
//! Each tool writes a human-readable report (or JSON) to `out` and returns the
//! process exit code; the CLI wires them into subcommands.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::matcher::{CandidateStatus, MatchContext, RuleSet};
use super::rules::{Intent, LoadOptions};
use crate::channels::Channel;

/// The label for "no intent matched" in datasets.
pub const NONE_LABEL: &str = "none";

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
/// intents with the same priority, buttons that WhatsApp would reject.
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
    writeln!(
        out,
        "ok: {} intents from {} files, {} warning{}",
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
        if !intent.has_triggers() {
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
        if intent.patterns.is_empty() && dead == intent.keywords.len() {
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
    out
}

/// Shows how `message` is matched: the normalized text, every hit with its
/// rule and span, and the winner. Exit 1 when the rules do not load.
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
    let e = rules.explain(message, &MatchContext::default());
    writeln!(out, "message:    {message}")?;
    writeln!(out, "normalized: {}", e.normalized)?;
    writeln!(
        out,
        "language:   {:?}",
        super::language::detect_language(message)
    )?;
    if e.candidates.is_empty() {
        writeln!(out, "matches:    none")?;
    } else {
        writeln!(out, "matches (best first):")?;
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
        Some(m) => writeln!(out, "winner:     {} ({})", m.intent, m.rule)?,
        None => writeln!(
            out,
            "winner:     none -> {}",
            rules
                .fallback()
                .map(|f| f.name.as_str())
                .unwrap_or("(no fallback intent)")
        )?,
    }
    Ok(0)
}

/// A labelled dataset: `[[example]]` tables with `text` and `intent`.
#[derive(Debug, Deserialize)]
struct Dataset {
    example: Vec<Example>,
}

#[derive(Debug, Deserialize)]
struct Example {
    text: String,
    intent: String,
}

/// Precision and recall of one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelStats {
    /// Examples with this label.
    pub support: usize,
    /// Examples predicted as this label.
    pub predicted: usize,
    /// Correct predictions.
    pub correct: usize,
    /// correct / predicted (1.0 when nothing was predicted).
    pub precision: f64,
    /// correct / support (1.0 when there is no example).
    pub recall: f64,
}

/// One example's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExampleResult {
    /// The message.
    pub text: String,
    /// The label.
    pub expected: String,
    /// The winning intent, or `none`.
    pub predicted: String,
}

/// The result of running a dataset.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetReport {
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Per label (including `none`).
    pub per_intent: BTreeMap<String, LabelStats>,
    /// Every example.
    pub examples: Vec<ExampleResult>,
}

/// Runs every example of `dataset` (TOML text) through `rules`.
pub fn evaluate(rules: &RuleSet, dataset: &str) -> anyhow::Result<DatasetReport> {
    let data: Dataset = toml::from_str(dataset).context("parsing the dataset")?;
    let ctx = MatchContext::default();
    let examples: Vec<ExampleResult> = data
        .example
        .into_iter()
        .map(|ex| {
            let predicted = rules
                .classify(&ex.text, &ctx)
                .map(|m| m.intent)
                .unwrap_or_else(|| NONE_LABEL.to_string());
            ExampleResult {
                text: ex.text,
                expected: ex.intent,
                predicted,
            }
        })
        .collect();
    let mut per_intent: BTreeMap<String, LabelStats> = BTreeMap::new();
    let blank = LabelStats {
        support: 0,
        predicted: 0,
        correct: 0,
        precision: 1.0,
        recall: 1.0,
    };
    for ex in &examples {
        per_intent
            .entry(ex.expected.clone())
            .or_insert_with(|| blank.clone())
            .support += 1;
        let p = per_intent
            .entry(ex.predicted.clone())
            .or_insert_with(|| blank.clone());
        p.predicted += 1;
        if ex.predicted == ex.expected {
            p.correct += 1;
        }
    }
    for s in per_intent.values_mut() {
        if s.predicted > 0 {
            s.precision = s.correct as f64 / s.predicted as f64;
        }
        if s.support > 0 {
            s.recall = s.correct as f64 / s.support as f64;
        }
    }
    let correct = examples
        .iter()
        .filter(|e| e.expected == e.predicted)
        .count();
    let accuracy = if examples.is_empty() {
        0.0
    } else {
        correct as f64 / examples.len() as f64
    };
    Ok(DatasetReport {
        accuracy,
        per_intent,
        examples,
    })
}

/// Runs a labelled dataset (`[[example]]` with `text` and `intent`; `none` =
/// nothing matched) against the rules in `rules_path` and prints accuracy,
/// per-intent precision/recall, a confusion summary and the misclassified
/// examples, or with `json` a JSON report. Exit 1 when the rules do not load or
/// accuracy is below `min_accuracy`.
pub fn test_dataset(
    rules_path: &Path,
    opts: &LoadOptions,
    dataset_path: &Path,
    min_accuracy: Option<f64>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let rules = match RuleSet::load_dir(rules_path, opts) {
        Ok(r) => r,
        Err(errors) => {
            write!(out, "{errors}")?;
            return Ok(1);
        }
    };
    let text = std::fs::read_to_string(dataset_path)
        .with_context(|| format!("reading {}", dataset_path.display()))?;
    let report = evaluate(&rules, &text)?;
    let below = min_accuracy.is_some_and(|min| report.accuracy < min);
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(i32::from(below));
    }
    let correct = report
        .examples
        .iter()
        .filter(|e| e.expected == e.predicted)
        .count();
    writeln!(
        out,
        "accuracy: {:.1}% ({correct}/{})",
        report.accuracy * 100.0,
        report.examples.len()
    )?;
    writeln!(
        out,
        "\n{:<16} {:>7} {:>9} {:>7}",
        "intent", "support", "precision", "recall"
    )?;
    for (label, s) in &report.per_intent {
        writeln!(
            out,
            "{label:<16} {:>7} {:>8.1}% {:>6.1}%",
            s.support,
            s.precision * 100.0,
            s.recall * 100.0
        )?;
    }
    let mut confusion: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for e in report.examples.iter().filter(|e| e.expected != e.predicted) {
        *confusion.entry((&e.expected, &e.predicted)).or_default() += 1;
    }
    if !confusion.is_empty() {
        let mut pairs: Vec<_> = confusion.into_iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        writeln!(out, "\nconfusions (expected -> predicted):")?;
        for ((expected, predicted), n) in pairs {
            writeln!(out, "  {n:>3}  {expected} -> {predicted}")?;
        }
        writeln!(out, "\nmisclassified:")?;
        for e in report.examples.iter().filter(|e| e.expected != e.predicted) {
            writeln!(
                out,
                "  expected {:<15} got {:<15} {:?}",
                e.expected, e.predicted, e.text
            )?;
        }
    }
    if let Some(min) = min_accuracy {
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
