//! The combination as tables: synthetic evidence through `decide`, and whole
//! messages through a small trained rule set.

use std::path::PathBuf;

use super::*;
use crate::intents::{LoadOptions, RuleSet};

const RULES: &str = r#"
[confidence]
answer = 0.55
clarify = 0.3
confirm_opt_out = 0.2

[[intent]]
name = "greeting"
kind = "small_talk"
priority = 10
action = "reply"
keywords = ["halo", "horas"]
reply = "Halo!"
examples = ["halo", "hai kak", "selamat pagi", "pagi min", "permisi", "hello", "hi"]

[[intent]]
name = "order_status"
label = "Status pesanan"
priority = 48
action = "reply"
queue = "orders"
keywords = ["resi"]
reply = "Cek pesanan"
examples = [
  "paket saya belum sampai", "pesanan saya kapan dikirim", "kiriman saya belum datang",
  "paketnya sampai mana ya", "where is my order", "kurirnya belum datang", "pesanan belum diterima",
]

[[intent]]
name = "refund_return"
label = "Retur & refund"
priority = 70
action = "handoff"
queue = "refunds"
keywords = ["refund"]
reply = "Refund"
examples = [
  "mau refund", "uang saya kembalikan", "minta pengembalian dana", "retur barang ini",
  "i want my money back", "tukar barang dong", "balikin duit saya",
]

[[intent]]
name = "warranty"
label = "Garansi"
priority = 62
action = "reply"
queue = "after_sales"
keywords = ["garansi"]
exclude = ['garansi (sudah )?habis']
reply = "Garansi"
examples = [
  "garansinya berapa lama", "mau klaim garansi", "masih garansi tidak", "kartu garansi hilang",
  "does it have a warranty", "klaim garansi ke mana", "garansi resmi atau toko",
]

[[intent]]
name = "human_agent"
kind = "person"
priority = 80
action = "handoff"
queue = "general"
keywords = ["customer service", "admin"]
reply = "CS"
examples = [
  "mau bicara dengan orang", "sambungkan ke customer service", "talk to a human",
  "minta ditelepon", "mau ngobrol sama admin", "ada orang asli", "operator tolong",
]

[[intent]]
name = "opt_out"
priority = 90
action = "opt_out"
keywords = ["unsubscribe"]
reply = "Berhenti"
examples = [
  "stop kirim promo", "jangan kirim promo lagi", "unsubscribe", "hapus nomor saya dari broadcast",
  "tidak mau terima promo", "berhenti langganan", "no more promos",
]

[[intent]]
name = "opt_in"
label = "Langganan promo"
priority = 95
action = "opt_in"
keywords = ["langganan"]
reply = "Langganan"
examples = [
  "mau dapat promo", "daftar broadcast", "langganan newsletter", "subscribe", "kirimi saya info diskon",
  "mau info flash sale", "masukkan ke daftar promo",
]

[[intent]]
name = "fallback"
action = "reply"
reply = "Maaf"
examples = [
  "lagi apa", "wkwk", "harga emas hari ini", "siapa presiden", "slot gacor", "pinjaman cepat cair",
  "cuaca besok", "test",
]
"#;

fn rules() -> RuleSet {
    RuleSet::from_sources(
        &[(PathBuf::from("10-rules.toml"), RULES.to_string())],
        &LoadOptions::default(),
    )
    .unwrap()
}

/// Evidence for one intent: (name, model probability, rule).
type Ev<'a> = (&'a str, f32, RuleHit);

/// Runs `decide` on synthetic evidence, combined the way `understand` does.
fn decide(r: &RuleSet, evidence: &[Ev]) -> (Decision, Reason) {
    let index = |n: &str| r.intents().iter().position(|i| i.name == n).unwrap();
    let mut cands: Vec<Cand> = evidence
        .iter()
        .map(|&(name, p, rule)| {
            let f = match rule {
                RuleHit::Winner => RULE_WINNER_FACTOR,
                RuleHit::Hit => RULE_HIT_FACTOR,
                RuleHit::None => 1.0,
            };
            Cand {
                intent: index(name),
                p,
                q: p * f,
                rule,
            }
        })
        .collect();
    let none = Some(index("fallback"));
    let in_scope = |c: &&Cand| Some(c.intent) != none;
    let p_none: f32 = cands.iter().filter(|c| !in_scope(c)).map(|c| c.p).sum();
    let raw_in: f32 = cands.iter().filter(in_scope).map(|c| c.p).sum();
    let weighted: f32 = cands.iter().filter(in_scope).map(|c| c.q).sum();
    let winner = evidence
        .iter()
        .find(|e| e.2 == RuleHit::Winner)
        .map(|e| index(e.0));
    combine(&mut cands, p_none, raw_in, weighted, winner.is_some(), none);
    cands.sort_by(|a, b| b.q.total_cmp(&a.q));
    r.decide(&cands, winner, none)
}

/// A decision in short: `answer X`, `answer X about Y`, `clarify X|Y`,
/// `confirm X|Y`, `fallback`.
fn short(d: &Decision) -> String {
    match d {
        Decision::Answer {
            intent,
            topic: Some(t),
            ..
        } => format!("answer {intent} about {t}"),
        Decision::Answer { intent, .. } => format!("answer {intent}"),
        Decision::Clarify { kind, candidates } => {
            let names: Vec<&str> = candidates.iter().map(|c| c.intent.as_str()).collect();
            let k = match kind {
                ClarifyKind::Topics => "clarify",
                ClarifyKind::ConfirmOptOut => "confirm",
            };
            format!("{k} {}", names.join("|"))
        }
        Decision::Fallback { .. } => "fallback".into(),
    }
}

#[test]
fn combination_table() {
    use RuleHit::*;
    let r = rules();
    let cases: &[(&str, &[Ev], &str)] = &[
        (
            "a rule that agrees with the model answers",
            &[("order_status", 0.6, Winner), ("fallback", 0.4, None)],
            "answer order_status",
        ),
        (
            "a rule is strong evidence against a lukewarm model",
            &[
                ("order_status", 0.15, Winner),
                ("warranty", 0.45, None),
                ("fallback", 0.4, None),
            ],
            "answer order_status",
        ),
        (
            "a sure model beats a stray rule",
            &[
                ("order_status", 0.03, Winner),
                ("warranty", 0.9, None),
                ("fallback", 0.07, None),
            ],
            "answer warranty",
        ),
        (
            "the model covers what no rule names",
            &[
                ("warranty", 0.8, None),
                ("order_status", 0.1, None),
                ("fallback", 0.1, None),
            ],
            "answer warranty",
        ),
        (
            "two close topics: ask about both",
            &[
                ("warranty", 0.45, None),
                ("refund_return", 0.35, None),
                ("fallback", 0.2, None),
            ],
            "clarify warranty|refund_return",
        ),
        (
            "nothing likely: fallback",
            &[
                ("warranty", 0.25, None),
                ("refund_return", 0.25, None),
                ("order_status", 0.25, None),
                ("fallback", 0.25, None),
            ],
            "fallback",
        ),
        (
            "out of scope: fallback",
            &[("fallback", 0.8, None), ("warranty", 0.2, None)],
            "fallback",
        ),
        (
            "a rule against out of scope: ask",
            &[
                ("fallback", 0.6, None),
                ("order_status", 0.1, Winner),
                ("warranty", 0.3, None),
            ],
            "clarify order_status|warranty",
        ),
        (
            "a request beats the greeting rule",
            &[
                ("greeting", 0.3, Winner),
                ("order_status", 0.6, None),
                ("fallback", 0.1, None),
            ],
            "answer order_status",
        ),
        (
            "a greeting alone is answered",
            &[
                ("greeting", 0.9, Winner),
                ("order_status", 0.05, None),
                ("fallback", 0.05, None),
            ],
            "answer greeting",
        ),
        (
            "the model preferring the greeting keeps it a greeting",
            &[
                ("greeting", 0.48, Winner),
                ("refund_return", 0.33, None),
                ("fallback", 0.19, None),
            ],
            "answer greeting",
        ),
        (
            "a stray request word does not beat a greeting",
            &[
                ("greeting", 0.85, Winner),
                ("order_status", 0.1, None),
                ("fallback", 0.05, None),
            ],
            "answer greeting",
        ),
        (
            "an opt-out rule opts out against a lukewarm model",
            &[
                ("opt_out", 0.2, Winner),
                ("order_status", 0.7, None),
                ("fallback", 0.1, None),
            ],
            "answer opt_out",
        ),
        (
            "an opt-out rule the model is sure is wrong is confirmed, never ignored",
            &[
                ("opt_out", 0.02, Winner),
                ("order_status", 0.95, Hit),
                ("fallback", 0.03, None),
            ],
            "confirm opt_out|order_status",
        ),
        (
            "a sure opt-out opts out",
            &[("opt_out", 0.9, None), ("fallback", 0.1, None)],
            "answer opt_out",
        ),
        (
            "an unclear opt-out on top is confirmed",
            &[
                ("opt_out", 0.4, None),
                ("order_status", 0.35, None),
                ("fallback", 0.25, None),
            ],
            "confirm opt_out|order_status",
        ),
        (
            "a plausible opt-out below another topic is confirmed",
            &[
                ("order_status", 0.5, None),
                ("opt_out", 0.25, None),
                ("fallback", 0.25, None),
            ],
            "confirm opt_out|order_status",
        ),
        (
            "nobody is opted in on a guess: offered as a button",
            &[
                ("opt_in", 0.4, Hit),
                ("order_status", 0.3, None),
                ("fallback", 0.3, None),
            ],
            "clarify opt_in|order_status",
        ),
        (
            "an opt-in rule with the model agreeing opts in",
            &[
                ("opt_in", 0.6, Winner),
                ("order_status", 0.2, None),
                ("fallback", 0.2, None),
            ],
            "answer opt_in",
        ),
        (
            "a person with a handoff topic goes to the topic",
            &[
                ("human_agent", 0.4, Winner),
                ("refund_return", 0.3, Hit),
                ("fallback", 0.3, None),
            ],
            "answer refund_return",
        ),
        (
            "a person with a reply topic: the person, about the topic",
            &[
                ("human_agent", 0.4, Winner),
                ("warranty", 0.3, Hit),
                ("fallback", 0.3, None),
            ],
            "answer human_agent about warranty",
        ),
        (
            "a person alone",
            &[("human_agent", 0.7, None), ("fallback", 0.3, None)],
            "answer human_agent",
        ),
        (
            "a plausible person is never answered with another topic: ask",
            &[
                ("warranty", 0.55, None),
                ("human_agent", 0.35, None),
                ("fallback", 0.1, None),
            ],
            "clarify warranty|human_agent",
        ),
        (
            "a sure person with a likely topic: the person, about the topic",
            &[
                ("human_agent", 0.6, None),
                ("warranty", 0.35, None),
                ("fallback", 0.05, None),
            ],
            "answer human_agent about warranty",
        ),
    ];
    for (what, evidence, want) in cases {
        let (d, reason) = decide(&r, evidence);
        assert_eq!(short(&d), *want, "{what}: {reason}");
    }
}

#[test]
fn messages_end_to_end() {
    let r = rules();
    let ctx = MatchContext::default();
    let cases: &[(&str, &str)] = &[
        ("halo", "answer greeting"),
        ("horas", "answer greeting"),
        (
            "halo kak, paket saya kok belum sampai",
            "answer order_status",
        ),
        ("unsubscribe", "answer opt_out"),
        (
            "barang rusak mau refund, sambungkan ke customer service",
            "answer refund_return",
        ),
        (
            "garansi gimana, sambungkan ke customer service",
            "answer human_agent about warranty",
        ),
        ("slot gacor maxwin", "fallback"),
    ];
    for (text, want) in cases {
        let u = r.understand(text, &ctx);
        assert_eq!(short(&u.decision), *want, "{text:?}: {:?}", u.explanation);
    }
}

#[test]
fn vetoes_apply_to_the_model_too() {
    let r = rules();
    let u = r.understand("garansi habis", &MatchContext::default());
    assert_ne!(u.predicted(), "warranty", "{:?}", u.explanation);
}

#[test]
fn without_examples_understand_equals_classify() {
    let text =
        "[[intent]]\nname = \"a\"\nkeywords = [\"garansi\"]\naction = \"reply\"\nreply = \"x\"\n";
    let r = RuleSet::from_sources(
        &[(PathBuf::from("a.toml"), text.to_string())],
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(!r.has_model());
    let ctx = MatchContext::default();
    let u = r.understand("garansinya?", &ctx);
    assert_eq!(short(&u.decision), "answer a");
    assert_eq!(u.explanation.reason, Reason::RulesOnly);
    let u = r.understand("apa kabar", &ctx);
    assert_eq!(short(&u.decision), "fallback");
    assert_eq!(u.predicted(), NONE_LABEL);
}

#[test]
fn entities_and_explanation_come_along() {
    let r = rules();
    let u = r.understand("resi JP1234567890 belum sampai", &MatchContext::default());
    assert_eq!(u.entities.len(), 1);
    assert_eq!(u.entities[0].value, "JP1234567890");
    assert_eq!(u.explanation.rule.as_ref().unwrap().intent, "order_status");
    assert_eq!(u.explanation.model.len(), 3);
    assert_eq!(u.explanation.combined[0].intent, "order_status");
    assert_eq!(u.outcome(), "answer");
    assert_eq!(u.answered(), Some("order_status"));
}

#[test]
fn questions_offer_the_candidates_and_a_person() {
    use crate::channels::Button;
    use crate::intents::Lang;
    let r = rules();
    let b = |id: &str, title: &str| Button {
        id: id.into(),
        title: title.into(),
    };
    let topics = Understanding {
        decision: Decision::Clarify {
            kind: ClarifyKind::Topics,
            candidates: vec![
                Scored {
                    intent: "warranty".into(),
                    confidence: 0.45,
                },
                Scored {
                    intent: "order_status".into(),
                    confidence: 0.3,
                },
            ],
        },
        ..r.understand("x", &MatchContext::default())
    };
    let q = topics.question(&r, Lang::Id).unwrap();
    assert!(q.body.contains("maksud Kakak"), "{}", q.body);
    assert_eq!(
        q.buttons,
        vec![
            b("intent:warranty", "Garansi"),
            b("intent:order_status", "Status pesanan"),
            b("intent:human_agent", "Bicara dengan CS"),
        ]
    );
    let confirm = Understanding {
        decision: Decision::Clarify {
            kind: ClarifyKind::ConfirmOptOut,
            candidates: vec![Scored {
                intent: "opt_out".into(),
                confidence: 0.4,
            }],
        },
        ..topics.clone()
    };
    let q = confirm.question(&r, Lang::Id).unwrap();
    assert_eq!(q.body, "Berhenti menerima promo?");
    assert_eq!(
        q.buttons,
        vec![
            b("intent:opt_out", "Ya, berhenti"),
            b(KEEP_SUBSCRIBED_PAYLOAD, "Tidak")
        ]
    );
    let en = confirm.question(&r, Lang::En).unwrap();
    assert_eq!(en.buttons[0].title, "Yes, stop");
    assert!(
        r.understand("halo", &MatchContext::default())
            .question(&r, Lang::Id)
            .is_none()
    );
}

#[test]
fn top_k_table() {
    let mut got = top_k(&[0.1, 0.5, 0.3, 0.9, 0.2], 2);
    got.sort_unstable();
    assert_eq!(got, vec![1, 3]);
    let mut all = top_k(&[0.1, 0.5], 8);
    all.sort_unstable();
    assert_eq!(all, vec![0, 1]);
    assert_eq!(top_k(&[0.2, 0.2, 0.2], 1).len(), 1);
    assert!(top_k(&[], 3).is_empty());
}
