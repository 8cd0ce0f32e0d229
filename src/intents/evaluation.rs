//! Measuring understanding: labelled datasets and cross-validation.
//!
//! A dataset is TOML with `[[example]]` tables of `text` and `intent` (`none`:
//! out of scope, the fallback should answer). Every message goes through
//! [`RuleSet::understand`], exactly as a customer's would; the [`Report`] has
//! accuracy (the predicted intent equals the label, see
//! [`Understanding::predicted`]), per-label precision, recall and F1, the
//! confusion matrix, the confidently-wrong rate (answered with the wrong
//! intent: the costly mistake) and how often the bot asks or falls back.
//!
//! Cross-validation measures the rule files' own examples: split into K
//! folds, each fold is understood by a model trained on the other folds, so
//! authors see how the examples generalize without a held-out set.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::matcher::{MatchContext, RuleSet};
use super::understand::{NONE_LABEL, Trained, Understanding};

/// A labelled dataset file.
#[derive(Debug, Deserialize)]
struct Dataset {
    example: Vec<LabelledText>,
}

/// One labelled message.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledText {
    /// The message.
    pub text: String,
    /// The expected intent, or `none`.
    pub intent: String,
}

/// Parses a dataset (`[[example]]` with `text` and `intent`).
pub fn parse_dataset(text: &str) -> anyhow::Result<Vec<LabelledText>> {
    let data: Dataset = toml::from_str(text)
        .context("parsing the dataset: expected `[[example]]` tables with `text` and `intent`")?;
    Ok(data.example)
}

/// One message's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExampleResult {
    /// The message.
    pub text: String,
    /// The label.
    pub expected: String,
    /// The top intent ([`Understanding::predicted`]), `none` for a fallback.
    pub predicted: String,
    /// `answer`, `clarify` or `fallback`.
    pub outcome: String,
    /// Confidence of the decision.
    pub confidence: f32,
}

impl ExampleResult {
    fn new(text: String, expected: String, u: &Understanding) -> ExampleResult {
        ExampleResult {
            text,
            expected,
            predicted: u.predicted().to_string(),
            outcome: u.outcome().to_string(),
            confidence: (u.confidence() * 1000.0).round() / 1000.0,
        }
    }

    /// Whether the prediction is right.
    pub fn correct(&self) -> bool {
        self.expected == self.predicted
    }

    /// Answered, and with the wrong intent.
    pub fn confidently_wrong(&self) -> bool {
        self.outcome == "answer" && !self.correct()
    }
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelStats {
    /// Messages with this label.
    pub support: usize,
    /// Messages predicted as this label.
    pub predicted: usize,
    /// Correct predictions.
    pub correct: usize,
    /// correct / predicted (1.0 when nothing was predicted).
    pub precision: f64,
    /// correct / support (1.0 when there is no message).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// The result of a dataset or a cross-validation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Share answered with the wrong intent.
    pub confidently_wrong: f64,
    /// Share answered with a clarifying question.
    pub clarify_rate: f64,
    /// Share that got the fallback.
    pub fallback_rate: f64,
    /// Per label (including `none`).
    pub per_intent: BTreeMap<String, LabelStats>,
    /// `confusion[expected][predicted]` = count.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Every message.
    pub examples: Vec<ExampleResult>,
}

impl Report {
    /// Computes the figures of `examples`.
    pub fn from_examples(examples: Vec<ExampleResult>) -> Report {
        let n = examples.len().max(1) as f64;
        let mut per_intent: BTreeMap<String, LabelStats> = BTreeMap::new();
        let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let blank = LabelStats {
            support: 0,
            predicted: 0,
            correct: 0,
            precision: 1.0,
            recall: 1.0,
            f1: 1.0,
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
            if ex.correct() {
                p.correct += 1;
            }
            *confusion
                .entry(ex.expected.clone())
                .or_default()
                .entry(ex.predicted.clone())
                .or_default() += 1;
        }
        for s in per_intent.values_mut() {
            if s.predicted > 0 {
                s.precision = s.correct as f64 / s.predicted as f64;
            }
            if s.support > 0 {
                s.recall = s.correct as f64 / s.support as f64;
            }
            s.f1 = if s.precision + s.recall > 0.0 {
                2.0 * s.precision * s.recall / (s.precision + s.recall)
            } else {
                0.0
            };
        }
        let count = |f: &dyn Fn(&ExampleResult) -> bool| examples.iter().filter(|e| f(e)).count();
        let share = |k: usize| {
            if examples.is_empty() {
                0.0
            } else {
                k as f64 / n
            }
        };
        Report {
            accuracy: share(count(&|e| e.correct())),
            confidently_wrong: share(count(&|e| e.confidently_wrong())),
            clarify_rate: share(count(&|e| e.outcome == "clarify")),
            fallback_rate: share(count(&|e| e.outcome == "fallback")),
            per_intent,
            confusion,
            examples,
        }
    }
}

/// Runs every message of `dataset` (TOML text) through `rules`.
pub fn evaluate(rules: &RuleSet, dataset: &str) -> anyhow::Result<Report> {
    let data = parse_dataset(dataset)?;
    let ctx = MatchContext::default();
    let examples = data
        .into_iter()
        .map(|ex| {
            let u = rules.understand(&ex.text, &ctx);
            ExampleResult::new(ex.text, ex.intent, &u)
        })
        .collect();
    Ok(Report::from_examples(examples))
}

/// Why cross-validation cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvError {
    /// K below 2.
    #[error("--cv needs at least 2 folds (got {0})")]
    TooFewFolds(usize),
    /// Not enough intents with examples to train on.
    #[error(
        "cross-validation needs `examples` on at least two intents with at least {0} examples each (one per fold)"
    )]
    TooFewExamples(usize),
}

/// K-fold cross-validation on the rule files' own examples: each example is
/// understood by a model trained without its fold (stratified per intent,
/// the same folds every run). Labels: the intent, `none` for the fallback's.
pub fn cross_validate(rules: &RuleSet, k: usize) -> Result<Report, CvError> {
    if k < 2 {
        return Err(CvError::TooFewFolds(k));
    }
    let intents = rules.intents();
    let eligible = intents.iter().filter(|i| i.examples.len() >= k).count();
    if eligible < 2 {
        return Err(CvError::TooFewExamples(k));
    }
    // fold[i][e]: the fold of example e of intent i.
    let mut rng = fastrand::Rng::with_seed(0xc0_55_fa_1d);
    let folds: Vec<Vec<usize>> = intents
        .iter()
        .map(|intent| {
            let mut order: Vec<usize> = (0..intent.examples.len()).collect();
            rng.shuffle(&mut order);
            let mut fold = vec![0; order.len()];
            for (pos, e) in order.into_iter().enumerate() {
                fold[e] = pos % k;
            }
            fold
        })
        .collect();
    let none = rules.fallback_index();
    let ctx = MatchContext::default();
    let mut results = Vec::new();
    for f in 0..k {
        let trained =
            Trained::from_intents(intents, rules.synonyms(), none, |i, e| folds[i][e] != f);
        for (i, intent) in intents.iter().enumerate() {
            let label = if Some(i) == none {
                NONE_LABEL
            } else {
                intent.name.as_str()
            };
            for (e, text) in intent.examples.iter().enumerate() {
                if folds[i][e] == f {
                    let u = rules.understand_with(trained.as_ref(), text, &ctx);
                    results.push(ExampleResult::new(text.clone(), label.to_string(), &u));
                }
            }
        }
    }
    Ok(Report::from_examples(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(expected: &str, predicted: &str, outcome: &str) -> ExampleResult {
        ExampleResult {
            text: String::new(),
            expected: expected.into(),
            predicted: predicted.into(),
            outcome: outcome.into(),
            confidence: 0.5,
        }
    }

    #[test]
    fn report_figures() {
        let r = Report::from_examples(vec![
            ex("a", "a", "answer"),
            ex("a", "b", "answer"),
            ex("a", "a", "clarify"),
            ex("b", "b", "answer"),
            ex("none", "none", "fallback"),
            ex("b", "none", "fallback"),
        ]);
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-9);
        assert!((r.confidently_wrong - 1.0 / 6.0).abs() < 1e-9);
        assert!((r.clarify_rate - 1.0 / 6.0).abs() < 1e-9);
        assert!((r.fallback_rate - 2.0 / 6.0).abs() < 1e-9);
        let a = &r.per_intent["a"];
        assert_eq!((a.support, a.predicted, a.correct), (3, 2, 2));
        assert!((a.recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((a.precision - 1.0).abs() < 1e-9);
        assert!((a.f1 - 0.8).abs() < 1e-9);
        assert_eq!(r.confusion["a"]["b"], 1);
        assert_eq!(r.confusion["b"]["none"], 1);
        let empty = Report::from_examples(Vec::new());
        assert_eq!(empty.accuracy, 0.0);
    }

    #[test]
    fn dataset_errors_say_what_is_expected() {
        let err = parse_dataset("[[example]]\ntext = \"x\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("`text` and `intent`"),
            "{err:#}"
        );
    }
}
