//! Understanding a message: rules and the example-trained model combined into
//! one decision: answer, ask a clarifying question, or fall back.
//!
//! [`RuleSet::understand`] is the one call the engine makes per message. It is
//! pure: the same rules, text and context always give the same
//! [`Understanding`].
//!
//! How the evidence is combined:
//!
//! 1. The classifier gives every intent with `examples` a probability
//!    (`fallback`'s examples are the out-of-scope class, shown as `none`).
//! 2. A rule that fires is strong evidence of *which* intent: among the
//!    intents, the winning rule's has its probability multiplied by
//!    [`RULE_WINNER_FACTOR`], other intents whose rules also fired by
//!    [`RULE_HIT_FACTOR`]; intents vetoed by `exclude`, or not allowed on this
//!    channel or at this time, get nothing. Whether the message is in scope at
//!    all stays mostly the model's call (a keyword in spam is still spam): a
//!    rule raises the in-scope odds by [`RULE_SCOPE_FACTOR`] only. The result
//!    is the *combined confidence*.
//! 3. Safety first: an `opt_out` rule opts out (unless the model is so sure
//!    of something else that even the rule leaves it below `clarify`); an
//!    opt-out the model is sure of opts out; a merely plausible one (the top
//!    intent, or at least `confirm_opt_out` likely, combined or by the model
//!    alone) is confirmed with a question ([`ClarifyKind::ConfirmOptOut`]).
//!    Nothing is ever opted in or out on a guess.
//! 4. A request always beats small talk: when a greeting or thanks comes out
//!    on top (a greeting rule matched) but the model prefers a request, or a
//!    request rule matched too, the request is decided on.
//! 5. A request for a person ([`Kind::Person`]) is answered when sure, and
//!    asked about (with a "talk to a person" button) when merely plausible:
//!    never answered with another topic. With a topic in the same message it
//!    goes to the topic (its own handoff, or the topic's queue).
//! 6. Otherwise the bands of [`Confidence`]: answer, clarify with the two most
//!    likely topics (plus "talk to a person"), or fall back. Opting in is
//!    never answered on a guess: without its rule, or the model alone sure of
//!    it, it is offered as a button instead.
//!
//! Intents without examples are decided by their rules alone, as before the
//! classifier existed; a rule set without any examples behaves exactly like
//! [`RuleSet::classify`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::augment;
use super::classifier::{Model, Sample};
use super::entities::{self, Entity};
use super::features::features;
use super::language::Lang;
use super::matcher::{CandidateStatus, Match, MatchContext, PAYLOAD_PREFIX, RuleSet};
use super::normalize::SynonymMap;
use super::rules::{Action, Intent, Kind};
use crate::channels::Button;

/// The label of the out-of-scope class (the `fallback` intent's examples) in
/// reports and datasets.
pub const NONE_LABEL: &str = "none";

/// How much more likely the winning rule makes its intent.
pub const RULE_WINNER_FACTOR: f32 = 10.0;
/// How much more likely a rule that fired makes it that the message is in
/// scope at all (the rest of that question is the model's `none` class).
pub const RULE_SCOPE_FACTOR: f32 = 3.0;
/// How much more likely a rule that fired but did not win makes its intent.
pub const RULE_HIT_FACTOR: f32 = 3.0;
/// A request next to small talk must have at least this model probability (or
/// a rule) to beat it: one stray word does not turn "halo" into a request.
pub const REQUEST_FLOOR: f32 = 0.15;
/// A topic next to a request for a person: at least this likely (or a rule).
pub const TOPIC_WITH_PERSON: f32 = 0.25;
/// A greeting or thanks rule against an out-of-scope model: answered when at
/// least this likely (`ping` is a greeting; `nonton bola malam ini` is not).
pub const SMALL_TALK_MIN: f32 = 0.1;
/// Classes considered per message besides the special ones: the likeliest
/// this many by the model.
const CANDIDATES: usize = 8;
/// The second clarify candidate: at least this likely, else only one is offered.
pub const SECOND_CANDIDATE: f32 = 0.05;
/// How much a generated variant of an example (misspelt, greeting in front)
/// counts in training, relative to the example itself.
const VARIANT_WEIGHT: f32 = 0.3;
/// How much a not-example counts: an author writes one where the model keeps
/// getting a message wrong, against many examples pulling the other way.
const NOT_EXAMPLE_WEIGHT: f32 = 4.0;

/// An intent (or `none`) and how likely it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// The intent's name, or [`NONE_LABEL`] for the out-of-scope class.
    pub intent: String,
    /// Probability (0–1).
    pub confidence: f32,
}

/// What a clarifying question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClarifyKind {
    /// "Which of these do you mean?": the candidates as buttons, plus a button
    /// to talk to a person.
    Topics,
    /// "Berhenti menerima promo? [Ya, berhenti] [Tidak]": the first candidate
    /// is the opt-out intent; the second, when present, is what to answer when
    /// the customer says no.
    ConfirmOptOut,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    /// Act on this intent.
    Answer {
        /// The intent to act on.
        intent: String,
        /// Combined confidence (0–1).
        confidence: f32,
        /// For a request for a person: the topic it is about. The handoff goes
        /// to the topic's `queue` when it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Ask before acting.
    Clarify {
        /// What to ask.
        kind: ClarifyKind,
        /// The likeliest intents, best first (one or two).
        candidates: Vec<Scored>,
    },
    /// Nothing fits well enough: the fallback intent (and the handoff after
    /// repeated fallbacks).
    Fallback {
        /// Confidence of the best guess (of `none` when out of scope).
        confidence: f32,
    },
}

/// Why the decision was taken, for `balas intents explain` and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reason {
    /// No intent has examples: the winning rule decides, as `classify` does.
    RulesOnly,
    /// The winning rule's intent has no examples: the rule decides.
    RuleWithoutExamples,
    /// An `opt_out` rule matched: opting out is never second-guessed.
    OptOutRule,
    /// The model is sure it is an opt-out.
    OptOutClear,
    /// An opt-out is plausible but not clear: ask.
    OptOutUnclear,
    /// A request was found next to small talk and wins over it.
    RequestOverSmallTalk {
        /// The greeting/thanks intent it beat.
        small_talk: String,
    },
    /// A person was asked for, about a topic.
    PersonWithTopic {
        /// The topic.
        topic: String,
    },
    /// A person was asked for.
    Person,
    /// Sure enough to answer.
    Confident,
    /// Not sure enough to answer, sure enough to ask.
    Unsure,
    /// Nothing is likely enough.
    LowConfidence,
    /// Out of scope (the `none` class is the most likely).
    OutOfScope,
    /// No rule matched and there is no model.
    NoMatch,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::RulesOnly => write!(f, "no intent has examples: the winning rule decides"),
            Reason::RuleWithoutExamples => {
                write!(
                    f,
                    "the winning rule's intent has no examples: the rule decides"
                )
            }
            Reason::OptOutRule => write!(f, "an opt-out rule matched: opt-outs are always obeyed"),
            Reason::OptOutClear => write!(f, "the model is sure this is an opt-out"),
            Reason::OptOutUnclear => write!(
                f,
                "an opt-out is plausible but not clear: confirm before (not) opting out"
            ),
            Reason::RequestOverSmallTalk { small_talk } => write!(
                f,
                "a request next to small talk (`{small_talk}`) wins over it"
            ),
            Reason::PersonWithTopic { topic } => {
                write!(
                    f,
                    "a person is asked for about `{topic}`: routed by that topic"
                )
            }
            Reason::Person => write!(f, "a person is asked for"),
            Reason::Confident => write!(f, "confident enough to answer"),
            Reason::Unsure => write!(f, "not confident enough to answer: ask which topic"),
            Reason::LowConfidence => write!(f, "nothing is likely enough: fallback"),
            Reason::OutOfScope => write!(f, "most likely out of scope: fallback"),
            Reason::NoMatch => write!(f, "no rule matched and there is no model: fallback"),
        }
    }
}

/// The evidence behind a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The normalized message.
    pub normalized: String,
    /// The winning rule, as [`RuleSet::classify`] returns it.
    pub rule: Option<Match>,
    /// Every intent with an eligible rule hit (the winner's included).
    pub rule_hits: Vec<String>,
    /// The classifier's three likeliest classes (empty without a model).
    pub model: Vec<Scored>,
    /// The three likeliest after combining rules and model.
    pub combined: Vec<Scored>,
    /// Why the decision was taken.
    pub reason: Reason,
}

/// Everything [`RuleSet::understand`] found in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    /// What to do.
    pub decision: Decision,
    /// Numbers found in the message (order, tracking, ticket, phone).
    pub entities: Vec<Entity>,
    /// Why.
    pub explanation: Evidence,
}

impl Understanding {
    /// `answer`, `clarify` or `fallback`.
    pub fn outcome(&self) -> &'static str {
        match self.decision {
            Decision::Answer { .. } => "answer",
            Decision::Clarify { .. } => "clarify",
            Decision::Fallback { .. } => "fallback",
        }
    }

    /// The intent a dataset compares with the label: the answer, the first
    /// clarify candidate (the opt-out for a confirmation), or [`NONE_LABEL`]
    /// for a fallback.
    pub fn predicted(&self) -> &str {
        match &self.decision {
            Decision::Answer { intent, .. } => intent,
            Decision::Clarify { candidates, .. } => candidates
                .first()
                .map(|c| c.intent.as_str())
                .unwrap_or(NONE_LABEL),
            Decision::Fallback { .. } => NONE_LABEL,
        }
    }

    /// Confidence of the decision (of its first candidate for a question).
    pub fn confidence(&self) -> f32 {
        match &self.decision {
            Decision::Answer { confidence, .. } | Decision::Fallback { confidence } => *confidence,
            Decision::Clarify { candidates, .. } => {
                candidates.first().map(|c| c.confidence).unwrap_or(0.0)
            }
        }
    }

    /// The intent to act on when the decision is to answer.
    pub fn answered(&self) -> Option<&str> {
        match &self.decision {
            Decision::Answer { intent, .. } => Some(intent),
            _ => None,
        }
    }

    /// [`Understanding::answered`], owned.
    pub fn into_answer(self) -> Option<String> {
        match self.decision {
            Decision::Answer { intent, .. } => Some(intent),
            _ => None,
        }
    }
}

/// Payload of the "Tidak" button of an opt-out confirmation when there is no
/// other likely topic to answer instead.
pub const KEEP_SUBSCRIBED_PAYLOAD: &str = "optout:no";

/// A clarifying question ready to send: the text and its reply buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// What to ask.
    pub body: String,
    /// The answers, as reply buttons (`intent:NAME` payloads select intents).
    pub buttons: Vec<Button>,
}

impl Understanding {
    /// The clarifying question of a [`Decision::Clarify`], in `lang`:
    ///
    /// - topics: "Maaf, supaya tidak salah, maksud Kakak tentang apa?" with a
    ///   button per candidate (its `label`) and one to talk to a person (the
    ///   first [`Kind::Person`] intent, when the rules have one);
    /// - opt-out: "Berhenti menerima promo?" with "Ya, berhenti"
    ///   (`intent:opt_out`) and "Tidak" (the second candidate's payload, or
    ///   [`KEEP_SUBSCRIBED_PAYLOAD`]).
    ///
    /// `None` for any other decision.
    pub fn question(&self, rules: &RuleSet, lang: Lang) -> Option<Question> {
        let Decision::Clarify { kind, candidates } = &self.decision else {
            return None;
        };
        let en = lang == Lang::En;
        let button = |name: &str| {
            rules.get(name).map(|i| Button {
                id: format!("{PAYLOAD_PREFIX}{}", i.name),
                title: i.button_label(lang).to_string(),
            })
        };
        Some(match kind {
            ClarifyKind::Topics => {
                let mut buttons: Vec<Button> = candidates
                    .iter()
                    .filter_map(|c| button(&c.intent))
                    .collect();
                let offered = |name: &str| candidates.iter().any(|c| c.intent == name);
                if let Some(person) = rules
                    .intents()
                    .iter()
                    .find(|i| i.kind == Kind::Person && !offered(&i.name))
                {
                    buttons.push(Button {
                        id: format!("{PAYLOAD_PREFIX}{}", person.name),
                        title: match (&person.label, en) {
                            (Some(_), _) => person.button_label(lang).to_string(),
                            (None, true) => "Talk to an agent".into(),
                            (None, false) => "Bicara dengan CS".into(),
                        },
                    });
                }
                Question {
                    body: if en {
                        "Sorry, just to be sure: which of these is it about?".into()
                    } else {
                        "Maaf, supaya tidak salah, maksud Kakak tentang yang mana?".into()
                    },
                    buttons,
                }
            }
            ClarifyKind::ConfirmOptOut => {
                let yes = candidates
                    .first()
                    .map_or_else(String::new, |c| c.intent.clone());
                let no = candidates
                    .get(1)
                    .map(|c| format!("{PAYLOAD_PREFIX}{}", c.intent))
                    .unwrap_or_else(|| KEEP_SUBSCRIBED_PAYLOAD.to_string());
                Question {
                    body: if en {
                        "Stop receiving promotions?".into()
                    } else {
                        "Berhenti menerima promo?".into()
                    },
                    buttons: vec![
                        Button {
                            id: format!("{PAYLOAD_PREFIX}{yes}"),
                            title: if en { "Yes, stop" } else { "Ya, berhenti" }.into(),
                        },
                        Button {
                            id: no,
                            title: if en { "No" } else { "Tidak" }.into(),
                        },
                    ],
                }
            }
        })
    }
}

/// The classifier with the mapping between its classes and the intents.
#[derive(Debug, Clone)]
pub(crate) struct Trained {
    pub(crate) model: Arc<Model>,
    /// Class → intent index.
    pub(crate) class_intent: Vec<usize>,
    /// Intent index → class.
    pub(crate) intent_class: Vec<Option<usize>>,
    /// The intent whose class is "out of scope" (`fallback`).
    pub(crate) none_intent: Option<usize>,
    /// The classes every message considers whatever the model says: `none`,
    /// the opt-outs and the requests for a person.
    pub(crate) special_classes: Vec<usize>,
}

impl Trained {
    /// Trains on the examples `keep(intent index, example index)` selects and
    /// every not-example. `None` when fewer than two intents have examples.
    pub(crate) fn from_intents(
        intents: &[Intent],
        synonyms: &SynonymMap,
        none_intent: Option<usize>,
        keep: impl Fn(usize, usize) -> bool,
    ) -> Option<Trained> {
        let mut class_intent = Vec::new();
        let mut intent_class = vec![None; intents.len()];
        for (i, intent) in intents.iter().enumerate() {
            if (0..intent.examples.len()).any(|e| keep(i, e)) {
                intent_class[i] = Some(class_intent.len());
                class_intent.push(i);
            }
        }
        if class_intent.len() < 2 {
            return None;
        }
        // Short small-talk examples, put in front of requests.
        let mut greetings: Vec<String> = Vec::new();
        for (i, intent) in intents.iter().enumerate() {
            // Greetings open a message; thanks (which resolve) close one.
            if intent.kind != Kind::SmallTalk || intent.action == Action::Resolve {
                continue;
            }
            for (e, text) in intent.examples.iter().enumerate() {
                let t = synonyms.normalize(text);
                if keep(i, e) && !t.is_empty() && t.split(' ').count() <= 3 {
                    greetings.push(t);
                }
            }
        }
        // (normalized text, class, example or not-example, a request?)
        let mut texts: Vec<(String, usize, bool, bool)> = Vec::new();
        for (i, intent) in intents.iter().enumerate() {
            let Some(class) = intent_class[i] else {
                continue;
            };
            let request = intent.kind != Kind::SmallTalk && Some(i) != none_intent;
            for (e, text) in intent.examples.iter().enumerate() {
                if keep(i, e) {
                    texts.push((synonyms.normalize(text), class, true, request));
                }
            }
            for text in &intent.not_examples {
                texts.push((synonyms.normalize(text), class, false, request));
            }
        }
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            (&texts, &greetings, class_intent.len()).hash(&mut h);
            h.finish()
        };
        let model = cached(key, || train(&texts, &greetings, class_intent.len()));
        let special_classes = class_intent
            .iter()
            .enumerate()
            .filter(|&(_, &i)| {
                Some(i) == none_intent
                    || intents[i].action == Action::OptOut
                    || intents[i].kind == Kind::Person
            })
            .map(|(c, _)| c)
            .collect();
        Some(Trained {
            model,
            class_intent,
            intent_class,
            none_intent,
            special_classes,
        })
    }
}

/// The last model trained in this process, by the hash of what it was
/// trained on: reloading unchanged examples (a reply edited, the same rules
/// loaded again by another part of the process) does not train again.
static LAST_MODEL: Mutex<Option<(u64, Arc<Model>)>> = Mutex::new(None);

fn cached(key: u64, train: impl FnOnce() -> Model) -> Arc<Model> {
    if let Some((k, model)) = LAST_MODEL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        && *k == key
    {
        return model.clone();
    }
    let model = Arc::new(train());
    *LAST_MODEL.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, model.clone()));
    model
}

/// Trains on `texts` (normalized text, class, example?, request?), adding a
/// misspelt variant of every example and a greeted variant of every request.
fn train(texts: &[(String, usize, bool, bool)], greetings: &[String], n_classes: usize) -> Model {
    let mut samples = Vec::with_capacity(texts.len() * 3);
    let mut rng = fastrand::Rng::with_seed(0x0a06_3e47);
    for (group, (normalized, class, positive, request)) in texts.iter().enumerate() {
        let (class, group) = (*class, group as u32);
        if !positive {
            samples.push(Sample {
                features: features(normalized),
                class,
                positive: false,
                group,
                weight: NOT_EXAMPLE_WEIGHT,
            });
            continue;
        }
        samples.push(Sample {
            features: features(normalized),
            class,
            positive: true,
            group,
            weight: 1.0,
        });
        samples.push(Sample {
            features: features(&augment::misspell(normalized, &mut rng)),
            class,
            positive: true,
            group,
            weight: VARIANT_WEIGHT,
        });
        if *request && !greetings.is_empty() {
            let g = &greetings[rng.usize(..greetings.len())];
            samples.push(Sample {
                features: features(&augment::greeted(g, normalized)),
                class,
                positive: true,
                group,
                weight: VARIANT_WEIGHT,
            });
        }
    }
    Model::train(&samples, n_classes)
}

/// Rule evidence for one intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleHit {
    None,
    Hit,
    Winner,
}

/// One intent's combined evidence.
#[derive(Debug, Clone, Copy)]
struct Cand {
    intent: usize,
    /// Model probability.
    p: f32,
    /// Combined confidence.
    q: f32,
    rule: RuleHit,
}

impl RuleSet {
    /// Understands `text`: the decision (answer, clarify, fallback), the
    /// numbers in it and why. See the [module docs](self) for how rules and
    /// the classifier combine.
    pub fn understand(&self, text: &str, ctx: &MatchContext) -> Understanding {
        self.understand_with(self.trained.as_ref(), text, ctx)
    }

    /// [`RuleSet::understand`] with another model (cross-validation folds).
    pub(crate) fn understand_with(
        &self,
        trained: Option<&Trained>,
        text: &str,
        ctx: &MatchContext,
    ) -> Understanding {
        let normalized = self.normalize(text);
        let hits = self.hits(&normalized);
        let winner = self.winner(&hits, &normalized, ctx).map(|(hit, score)| {
            (
                hit.intent as usize,
                Match {
                    intent: self.intents()[hit.intent as usize].name.clone(),
                    score,
                    rule: self.describe(hit.intent, hit.rule),
                    span: hit.span.clone(),
                    normalized: normalized.clone(),
                },
            )
        });
        let mut hit_intents: Vec<usize> = Vec::new();
        for h in &hits {
            let i = h.intent as usize;
            if !hit_intents.contains(&i)
                && self.status(&self.intents()[i], &normalized, ctx) == CandidateStatus::Eligible
            {
                hit_intents.push(i);
            }
        }
        let entities = entities::extract(text);
        let winner_idx = winner.as_ref().map(|(i, _)| *i);
        let rule_hits = hit_intents
            .iter()
            .map(|&i| self.intents()[i].name.clone())
            .collect();
        let rule = winner.map(|(_, m)| m);

        let model_ready =
            trained.filter(|t| winner_idx.is_none_or(|w| t.intent_class[w].is_some()));
        let Some(trained) = model_ready else {
            let (decision, reason) = self.rules_only(winner_idx, &hit_intents, trained.is_some());
            return Understanding {
                decision,
                entities,
                explanation: Evidence {
                    normalized,
                    rule,
                    rule_hits,
                    model: Vec::new(),
                    combined: Vec::new(),
                    reason,
                },
            };
        };

        let post = trained.model.posterior(&features(&normalized));
        let factor = |intent: usize| -> (RuleHit, f32) {
            if Some(intent) == winner_idx {
                (RuleHit::Winner, RULE_WINNER_FACTOR)
            } else if hit_intents.contains(&intent) {
                (RuleHit::Hit, RULE_HIT_FACTOR)
            } else {
                (RuleHit::None, 1.0)
            }
        };
        // Only a few classes can matter: the likeliest by the model, those a
        // rule named, `none`, and the safety-critical ones (opt-out, person).
        // The sums below still cover every class, so a thousand intents cost
        // one pass over the scores (which rank like the probabilities), not a
        // sort or an `exp` per class.
        let mut chosen: Vec<usize> = top_k(&post.scores, CANDIDATES);
        let named = hit_intents.iter().filter_map(|&i| trained.intent_class[i]);
        for c in trained.special_classes.iter().copied().chain(named) {
            if !chosen.contains(&c) {
                chosen.push(c);
            }
        }
        let is_none = |intent: usize| Some(intent) == trained.none_intent;
        let p_none: f32 = trained
            .none_intent
            .and_then(|i| trained.intent_class[i])
            .map_or(0.0, |c| post.p(c));
        // Σ p over the in-scope classes, and Σ p × rule factor.
        let mut raw_in = 1.0 - p_none;
        let mut weighted = raw_in;
        let mut cands: Vec<Cand> = Vec::with_capacity(chosen.len());
        for c in chosen {
            let intent = trained.class_intent[c];
            let p = post.p(c);
            let (rule, f) = factor(intent);
            let mut q = p * f;
            weighted += p * (f - 1.0);
            // Vetoes, channels and times apply to the model's guesses too.
            if !is_none(intent)
                && rule == RuleHit::None
                && p >= 0.005
                && self.status(&self.intents()[intent], &normalized, ctx)
                    != CandidateStatus::Eligible
            {
                q = 0.0;
                raw_in -= p;
                weighted -= p;
            }
            cands.push(Cand { intent, p, q, rule });
        }
        combine(
            &mut cands,
            p_none,
            raw_in.max(0.0),
            weighted,
            winner_idx.is_some(),
            trained.none_intent,
        );
        cands.sort_by(|a, b| b.q.total_cmp(&a.q).then(a.intent.cmp(&b.intent)));

        let mut by_p: Vec<(usize, f32)> = cands.iter().map(|c| (c.intent, c.p)).collect();
        by_p.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let label = |i: usize| -> String {
            if Some(i) == trained.none_intent {
                NONE_LABEL.to_string()
            } else {
                self.intents()[i].name.clone()
            }
        };
        let model = by_p
            .iter()
            .take(3)
            .map(|&(i, p)| Scored {
                intent: label(i),
                confidence: p,
            })
            .collect();
        let combined = cands
            .iter()
            .take(3)
            .map(|c| Scored {
                intent: label(c.intent),
                confidence: c.q,
            })
            .collect();
        let (decision, reason) = self.decide(&cands, winner_idx, trained.none_intent);
        Understanding {
            decision,
            entities,
            explanation: Evidence {
                normalized,
                rule,
                rule_hits,
                model,
                combined,
                reason,
            },
        }
    }

    /// The decision from rules alone (no model, or the rule's intent has no
    /// examples): the winner answers; a request for a person with another
    /// topic's rule goes by that topic.
    fn rules_only(
        &self,
        winner: Option<usize>,
        hit_intents: &[usize],
        has_model: bool,
    ) -> (Decision, Reason) {
        let Some(w) = winner else {
            return (Decision::Fallback { confidence: 0.0 }, Reason::NoMatch);
        };
        let intents = self.intents();
        if intents[w].kind == Kind::Person
            && let Some(&t) = hit_intents.iter().find(|&&i| self.is_topic(i))
        {
            return self.person_with_topic(w, 1.0, t, 1.0);
        }
        let reason = if has_model {
            Reason::RuleWithoutExamples
        } else {
            Reason::RulesOnly
        };
        (answer(&intents[w], 1.0, None), reason)
    }

    /// A topic a person can be asked about: a [`Kind::Topic`] intent that is
    /// not about marketing consent.
    fn is_topic(&self, i: usize) -> bool {
        let intent = &self.intents()[i];
        intent.kind == Kind::Topic && !matches!(intent.action, Action::OptIn | Action::OptOut)
    }

    fn person_with_topic(
        &self,
        person: usize,
        pq: f32,
        topic: usize,
        tq: f32,
    ) -> (Decision, Reason) {
        let intents = self.intents();
        let t = &intents[topic];
        let reason = Reason::PersonWithTopic {
            topic: t.name.clone(),
        };
        if t.action == Action::Handoff {
            // The topic hands off itself, to its own queue, with its own words.
            (answer(t, tq.max(pq), None), reason)
        } else {
            (answer(&intents[person], pq, Some(t.name.clone())), reason)
        }
    }

    /// Steps 3–6 of the module docs over the combined, sorted candidates.
    fn decide(
        &self,
        cands: &[Cand],
        winner: Option<usize>,
        none: Option<usize>,
    ) -> (Decision, Reason) {
        let intents = self.intents();
        let conf = self.confidence;
        let is_none = |c: &Cand| Some(c.intent) == none;
        let kind = |c: &Cand| intents[c.intent].kind;
        let action = |c: &Cand| intents[c.intent].action;
        let is_request = |c: &Cand| !is_none(c) && kind(c) != Kind::SmallTalk;
        let Some(top) = cands.first().copied() else {
            return (Decision::Fallback { confidence: 0.0 }, Reason::NoMatch);
        };

        // 3. Opt-out safety. An opt-out rule opts out unless the model is
        // sure it means something else (`jangan kirim barangnya dulu`): then
        // it is confirmed. Plausibility uses the model's own probability too,
        // so another intent's rule cannot hide an opt-out.
        let confirm = |oo: &Cand| {
            let mut candidates = vec![self.scored(oo)];
            if let Some(alt) = cands.iter().find(|c| {
                c.intent != oo.intent
                    && is_request(c)
                    && kind(c) != Kind::Person
                    && c.q >= SECOND_CANDIDATE
            }) {
                candidates.push(self.scored(alt));
            }
            Decision::Clarify {
                kind: ClarifyKind::ConfirmOptOut,
                candidates,
            }
        };
        if let Some(w) = winner
            && intents[w].action == Action::OptOut
            && let Some(oo) = cands.iter().find(|c| c.intent == w)
        {
            return if oo.q >= conf.clarify {
                (answer(&intents[w], oo.q, None), Reason::OptOutRule)
            } else {
                (confirm(oo), Reason::OptOutUnclear)
            };
        }
        if let Some((pos, oo)) = cands
            .iter()
            .enumerate()
            .find(|(_, c)| action(c) == Action::OptOut)
        {
            if pos == 0 && oo.q >= conf.answer {
                return (answer(&intents[oo.intent], oo.q, None), Reason::OptOutClear);
            }
            if pos == 0 || oo.q.max(oo.p) >= conf.confirm_opt_out {
                return (confirm(oo), Reason::OptOutUnclear);
            }
        }

        // 4. Small talk or out of scope on top: is there a request after all?
        let mut ranked: Vec<Cand> = cands.to_vec();
        let mut prefix: Option<Reason> = None;
        if !is_request(&top) {
            let mass: f32 = cands
                .iter()
                .filter(|c| kind(c) != Kind::SmallTalk)
                .map(|c| c.q)
                .sum();
            let best_request = cands.iter().find(|c| is_request(c)).copied();
            // The model learnt greetings in front of requests, so it is the
            // judge: the request wins when the model itself prefers it to the
            // small talk (or a rule named it), not because a greeting rule
            // left little else.
            let small_talk_p = cands
                .iter()
                .filter(|c| kind(c) == Kind::SmallTalk)
                .map(|c| c.p)
                .fold(0.0, f32::max);
            let promoted = best_request.filter(|r| {
                kind(&top) == Kind::SmallTalk
                    && mass > 0.0
                    && r.q / mass >= conf.clarify
                    && (r.rule != RuleHit::None || (r.p >= REQUEST_FLOOR && r.p > small_talk_p))
            });
            if promoted.is_some() {
                ranked = cands
                    .iter()
                    .filter(|c| kind(c) != Kind::SmallTalk)
                    .map(|c| Cand {
                        q: c.q / mass,
                        ..*c
                    })
                    .collect();
                prefix = Some(Reason::RequestOverSmallTalk {
                    small_talk: intents[top.intent].name.clone(),
                });
            } else if kind(&top) == Kind::SmallTalk {
                return if top.q >= conf.clarify || top.rule != RuleHit::None {
                    (answer(&intents[top.intent], top.q, None), Reason::Confident)
                } else {
                    (
                        Decision::Fallback { confidence: top.q },
                        Reason::LowConfidence,
                    )
                };
            } else {
                // Out of scope on top. A greeting rule is still a greeting
                // (`ping`, `sampurasun`): answering it is harmless.
                if let Some(st) = cands.iter().find(|c| {
                    kind(c) == Kind::SmallTalk && c.rule == RuleHit::Winner && c.q >= SMALL_TALK_MIN
                }) {
                    return (answer(&intents[st.intent], st.q, None), Reason::Confident);
                }
                // A request rule that fired still earns a question.
                if let Some(r) = best_request
                    && r.rule == RuleHit::Winner
                    && r.q >= conf.clarify
                {
                    return (self.clarify(&ranked, r), Reason::Unsure);
                }
                return (Decision::Fallback { confidence: top.q }, Reason::OutOfScope);
            }
        }
        let top = ranked[0];
        let with_prefix = |r: Reason| prefix.clone().unwrap_or(r);

        // 5. A person, with or without a topic: answered when sure; when
        // merely plausible, asked (the question always offers a person), so a
        // request for a person is never answered with another topic.
        if let Some(p) = ranked
            .iter()
            .find(|c| kind(c) == Kind::Person && c.q >= conf.clarify)
        {
            if p.q < conf.answer {
                let first = ranked.iter().find(|c| is_request(c)).copied().unwrap_or(*p);
                return (self.clarify(&ranked, first), Reason::Unsure);
            }
            let topic = ranked.iter().find(|c| {
                self.is_topic(c.intent)
                    && !is_none(c)
                    && (c.q >= TOPIC_WITH_PERSON || c.rule != RuleHit::None)
            });
            return match topic {
                Some(t) => self.person_with_topic(p.intent, p.q, t.intent, t.q),
                None => (
                    answer(&intents[p.intent], p.q, None),
                    with_prefix(Reason::Person),
                ),
            };
        }

        // 6. The bands. Consent is never given on a guess: opting in needs
        // its rule or a model sure of it by itself; otherwise it is offered
        // as a button.
        let guessed_consent =
            action(&top) == Action::OptIn && top.rule != RuleHit::Winner && top.p < conf.answer;
        if top.q >= conf.answer && !guessed_consent {
            (
                answer(&intents[top.intent], top.q, None),
                with_prefix(Reason::Confident),
            )
        } else if top.q >= conf.clarify || guessed_consent {
            (self.clarify(&ranked, top), Reason::Unsure)
        } else {
            (
                Decision::Fallback { confidence: top.q },
                Reason::LowConfidence,
            )
        }
    }

    /// A topics question: `first` and the next likeliest topic.
    fn clarify(&self, ranked: &[Cand], first: Cand) -> Decision {
        let intents = self.intents();
        let mut candidates = vec![self.scored(&first)];
        if let Some(second) = ranked.iter().find(|c| {
            c.intent != first.intent
                && c.q >= SECOND_CANDIDATE
                && intents[c.intent].kind != Kind::SmallTalk
                && intents[c.intent].name != super::rules::FALLBACK_INTENT
        }) {
            candidates.push(self.scored(second));
        }
        Decision::Clarify {
            kind: ClarifyKind::Topics,
            candidates,
        }
    }

    fn scored(&self, c: &Cand) -> Scored {
        Scored {
            intent: self.intents()[c.intent].name.clone(),
            confidence: c.q,
        }
    }
}

/// The combined confidence of the candidates, in place: `c.q` comes in as the
/// model probability times the rule factor (0 when vetoed), and leaves as a
/// probability. `p_none` is the model's out-of-scope probability; `raw_in` and
/// `weighted` the sums of the in-scope probabilities over *every* class,
/// without and with the rule factors.
///
/// Rules say which topic, given that the message is in scope; whether it is
/// in scope at all is mostly the model's `none` class (`harga emas hari ini`
/// names a price but is not about the shop), so a rule that fired raises the
/// in-scope odds by only [`RULE_SCOPE_FACTOR`].
fn combine(
    cands: &mut [Cand],
    p_none: f32,
    raw_in: f32,
    weighted: f32,
    rule_fired: bool,
    none: Option<usize>,
) {
    let scope = if rule_fired { RULE_SCOPE_FACTOR } else { 1.0 };
    let p_in = if raw_in + p_none > 0.0 {
        raw_in * scope / (raw_in * scope + p_none)
    } else {
        0.0
    };
    for c in cands {
        c.q = if Some(c.intent) == none {
            1.0 - p_in
        } else if weighted > 0.0 {
            p_in * c.q / weighted
        } else {
            0.0
        };
    }
}

/// Indices of the `k` largest values (unordered), in one pass without
/// allocating for every class.
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    // `best` is kept sorted, largest first; `floor` is its smallest value.
    let mut floor = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if best.len() == k && v <= floor {
            continue;
        }
        let at = best.partition_point(|&j| values[j] >= v);
        best.insert(at, i);
        best.truncate(k);
        floor = best.last().map_or(f32::NEG_INFINITY, |&j| values[j]);
    }
    best
}

fn answer(intent: &Intent, confidence: f32, topic: Option<String>) -> Decision {
    Decision::Answer {
        intent: intent.name.clone(),
        confidence,
        topic,
    }
}

#[cfg(test)]
mod tests;
