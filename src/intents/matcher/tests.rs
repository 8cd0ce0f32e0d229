//! Matcher and loader tests: priorities, ties, excludes, payloads, filters,
//! literal prefilters and every load error kind with its line.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;
use crate::intents::{Action, Lang, LoadOptions};

fn load(files: &[(&str, &str)]) -> Result<RuleSet, LoadErrors> {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    RuleSet::from_sources(&sources, &LoadOptions::default())
}

const RULES: &str = r#"
[normalize]
tidak = ["gk", "gak"]
"customer service" = ["cs"]

[[intent]]
name = "complaint"
priority = 50
action = "handoff"
queue = "complaints"
keywords = ["rusak", "kecewa"]

[[intent]]
name = "refund"
priority = 70
action = "handoff"
queue = "refunds"
keywords = ["refund", "retur"]
exclude = ['(bukan|tidak) (mau )?(refund|retur)']

[[intent]]
name = "warranty"
priority = 60
action = "reply"
keywords = ["garansi"]
replies = ["satu", "dua"]
replies_en = ["one"]

[[intent]]
name = "short"
priority = 5
action = "reply"
keywords = ["harga"]
reply = "short"

[[intent]]
name = "long"
priority = 5
action = "reply"
patterns = ['harga \w+ berapa']
reply = "long"

[[intent]]
name = "wa_only"
priority = 90
action = "reply"
keywords = ["katalog"]
channels = ["whatsapp"]
reply = "katalog"

[[intent]]
name = "night"
priority = 90
action = "reply"
keywords = ["darurat"]
when = "after_hours"
reply = "malam"

[[intent]]
name = "agent"
priority = 80
action = "handoff"
patterns = ['^customer service$']

[[intent]]
name = "fallback"
action = "reply"
reply = "maaf"
"#;

fn rules() -> RuleSet {
    load(&[("10-rules.toml", RULES)]).unwrap()
}

#[test]
fn classification_table() {
    let r = rules();
    let ctx = MatchContext::default();
    let cases: &[(&str, Option<&str>)] = &[
        ("barangnya rusak", Some("complaint")),
        // An explicit refund beats the complaint around it.
        ("barangnya rusak, refund aja", Some("refund")),
        // Negation vetoes via exclude; the next candidate wins.
        ("bukan mau refund, cuma nanya garansi", Some("warranty")),
        ("gk mau retur, garansinya gimana", Some("warranty")),
        // Keyword plus clitic.
        ("garansinya berapa lama", Some("warranty")),
        // Keywords only on word boundaries.
        ("refunding", None),
        ("prarusak", None),
        // Same priority: the longer match wins.
        ("harga blender berapa", Some("long")),
        ("harga?", Some("short")),
        // Synonyms apply before matching.
        ("cs", Some("agent")),
        ("CS!!", Some("agent")),
        ("", None),
        ("wkwkwk", None),
    ];
    for (text, want) in cases {
        let got = r.classify(text, &ctx).map(|m| m.intent);
        assert_eq!(got.as_deref(), *want, "{text:?}");
    }
}

#[test]
fn match_reports_rule_span_and_score() {
    let r = rules();
    let m = r
        .classify("Kak, REFUND dong", &MatchContext::default())
        .unwrap();
    assert_eq!(m.normalized, "kak . refund dong");
    assert_eq!(m.rule, "keyword `refund`");
    assert_eq!(&m.normalized[m.span.clone()], "refund");
    assert_eq!(
        m.score,
        Score {
            priority: 70,
            length: 6
        }
    );
    let m = r
        .classify("harga kipas berapa", &MatchContext::default())
        .unwrap();
    assert_eq!(m.rule, "pattern #1 `harga \\w+ berapa`");
    assert_eq!(m.span, 0..18);
}

#[test]
fn explain_lists_vetoed_and_losing_candidates() {
    let r = rules();
    let e = r.explain(
        "bukan mau refund, barangnya rusak",
        &MatchContext::default(),
    );
    assert_eq!(e.winner.unwrap().intent, "complaint");
    let refund = e.candidates.iter().find(|c| c.intent == "refund").unwrap();
    assert!(
        matches!(&refund.status, CandidateStatus::Excluded(rule) if rule.starts_with("exclude #1"))
    );
    assert_eq!(e.candidates[0].intent, "refund", "sorted by score");
}

#[test]
fn channel_and_time_filters() {
    let r = rules();
    let wa = MatchContext {
        channel: Some(Channel::WhatsApp),
        business_hours_open: true,
    };
    let ig = MatchContext {
        channel: Some(Channel::Instagram),
        business_hours_open: true,
    };
    let any = MatchContext::default();
    let night = MatchContext {
        channel: None,
        business_hours_open: false,
    };
    let name = |text: &str, ctx: &MatchContext| r.classify(text, ctx).map(|m| m.intent);
    assert_eq!(name("katalog", &wa).as_deref(), Some("wa_only"));
    assert_eq!(name("katalog", &ig), None);
    assert_eq!(name("katalog", &any).as_deref(), Some("wa_only"));
    assert_eq!(name("darurat", &any), None);
    assert_eq!(name("darurat", &night).as_deref(), Some("night"));
    // A filtered intent lets the next one win.
    assert_eq!(name("katalog rusak", &ig).as_deref(), Some("complaint"));
    let e = r.explain("katalog", &ig);
    assert_eq!(e.candidates[0].status, CandidateStatus::WrongChannel);
}

#[test]
fn payloads_lookup_and_replies() {
    let r = rules();
    assert_eq!(r.by_payload("intent:warranty").unwrap().name, "warranty");
    assert!(r.by_payload("intent:nope").is_none());
    assert!(r.by_payload("warranty").is_none());
    assert_eq!(r.fallback().unwrap().name, "fallback");
    assert_eq!(r.get("refund").unwrap().action, Action::Handoff);
    assert_eq!(r.get("refund").unwrap().queue.as_deref(), Some("refunds"));
    let w = r.get("warranty").unwrap();
    let say = |turn, lang| w.reply(turn, lang).unwrap().source().to_string();
    assert_eq!(say(0, Lang::Id), "satu");
    assert_eq!(say(1, Lang::Id), "dua");
    assert_eq!(say(2, Lang::Id), "satu");
    assert_eq!(say(7, Lang::En), "one");
    // No English replies: Indonesian for everyone.
    assert_eq!(
        r.get("short").unwrap().reply(0, Lang::En).unwrap().source(),
        "short"
    );
    assert!(r.get("agent").unwrap().reply(0, Lang::Id).is_none());
    assert_eq!(r.intents().len(), 9);
}

#[test]
fn required_literal_table() {
    let cases: &[(&str, Option<&[&str]>)] = &[
        ("harga berapa", Some(&["harga berapa"])),
        (r"klaim\s+garansi", Some(&["garansi"])),
        (r"(refund|retur)\w*", Some(&["refund", "retur"])),
        (r"(?:sambung|hubung)\w* ke cs", Some(&["sambung", "hubung"])),
        ("a|b", None),
        (r"(refund|retur)? dong", Some(&[" dong"])),
        ("garansix?", Some(&["garansi"])),
        ("(?i)abc", Some(&["abc"])),
        (r"\d+", None),
        ("[a-z]+ ok", Some(&[" ok"])),
        ("ab{0,2}c", None),
        ("tidak (bisa|mau) (nyala|menyala)", Some(&["tidak "])),
    ];
    for (pattern, want) in cases {
        let got = required_literals(pattern);
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{pattern:?}");
    }
}

#[test]
fn prefiltered_matching_equals_brute_force() {
    let patterns = [
        r"harga \w+ berapa",
        r"(refund|retur)\w*",
        r"tidak (bisa|mau) (nyala|menyala)",
        r"^(stop|berhenti)( dong)?$",
        r"\d{3,}",
        r"(sambung|hubung)\w* .{0,10}(cs|admin)",
        r"ab?c",
    ];
    let mut text = String::new();
    for (i, p) in patterns.iter().enumerate() {
        text.push_str(&format!(
            "[[intent]]\nname = \"p{i}\"\npriority = {i}\naction = \"reply\"\nreply = \"x\"\npatterns = ['{p}']\n\n"
        ));
    }
    let r = load(&[("r.toml", &text)]).unwrap();
    let messages = [
        "harga kipas berapa",
        "mau refundnya",
        "retur",
        "tidak bisa menyala",
        "stop",
        "stop dong",
        "stop kirim",
        "berhenti",
        "resi 12345",
        "12",
        "disambungin ke cs",
        "hubungi admin",
        "ac",
        "abc",
        "xyz",
        "tidak mau nyala tapi harga x berapa",
    ];
    for m in messages {
        let normalized = r.normalize(m);
        let mut brute: Vec<String> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| regex::Regex::new(p).unwrap().is_match(&normalized))
            .map(|(i, _)| format!("p{i}"))
            .collect();
        brute.sort();
        let mut got: Vec<String> = r
            .explain(m, &MatchContext::default())
            .candidates
            .into_iter()
            .map(|c| c.intent)
            .collect();
        got.sort();
        assert_eq!(got, brute, "{m:?}");
    }
}

/// Every load error kind, with the line it is reported on; all at once.
#[test]
fn load_errors_table() {
    type Case<'a> = (&'a str, &'a str, &'a [(usize, &'a str)]);
    let cases: &[Case] = &[
        (
            "bad regex",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"x\"\npatterns = [\n  'ok',\n  '(unclosed',\n]\n",
            &[(7, "intent `a`: bad regex in `patterns` `(unclosed`")],
        ),
        (
            "duplicate name",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"x\"\n\n[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"y\"\n",
            &[(
                7,
                "intent `a`: duplicate intent name, first defined at 10-a.toml:2",
            )],
        ),
        (
            "unknown action",
            "[[intent]]\nname = \"a\"\naction = \"replay\"\nreply = \"x\"\n",
            &[(3, "intent `a`: unknown action `replay`")],
        ),
        (
            "unknown field",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"x\"\nkeyword = [\"x\"]\n",
            &[(
                5,
                "intent `a`: unknown field `keyword` (did you mean `keywords`?)",
            )],
        ),
        (
            "unknown variable",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreplies = [\n  \"ok {{contact.name}}\",\n  \"{{contact.nama}}\",\n]\n",
            &[(
                6,
                "intent `a`: in `replies`: unknown variable `{{contact.nama}}`",
            )],
        ),
        (
            "queue on a resolve intent",
            "[[intent]]\nname = \"a\"\naction = \"resolve\"\nreply = \"x\"\nqueue = \"general\"\n",
            &[(
                5,
                "intent `a`: `queue`/`queue_priority` only apply to `action = \"handoff\"`",
            )],
        ),
        (
            "several at once",
            "[[intent]]\nname = \"a\"\naction = \"nope\"\nwhen = \"sometimes\"\nchannels = [\"telegram\"]\npriority = \"high\"\n\n[[intent]]\naction = \"reply\"\n",
            &[
                (3, "unknown action `nope`"),
                (4, "unknown `when` value `sometimes`"),
                (5, "unknown channel `telegram`"),
                (6, "`priority` must be an integer"),
                (9, "intent without a `name`"),
                (9, "needs something to say"),
            ],
        ),
        (
            "syntax error",
            "[[intent]]\nname = \"a\"\naction = \n",
            &[(3, "TOML syntax")],
        ),
        (
            "fallback with triggers, reply missing, top-level key",
            "colour = 1\n[[intent]]\nname = \"fallback\"\naction = \"reply\"\nkeywords = [\"x\"]\n",
            &[
                (1, "unknown top-level key `colour`"),
                (3, "needs something to say"),
                (5, "remove its `keywords`"),
            ],
        ),
        (
            "confidence bands",
            "[confidence]\nanswer = 1.5\nclarfy = 0.2\n",
            &[
                (2, "`confidence.answer` must be a number from 0.0 to 1.0"),
                (
                    3,
                    "unknown key `confidence.clarfy` (did you mean `clarify`?)",
                ),
            ],
        ),
        (
            "clarify above answer",
            "[confidence]\nanswer = 0.4\nclarify = 0.6\n",
            &[(1, "clarify must not be higher than answer")],
        ),
        (
            "unknown kind, empty example",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"x\"\nkind = \"chitchat\"\nexamples = [\"ok\", \" \"]\n",
            &[
                (
                    5,
                    "unknown `kind` `chitchat`; use topic, small_talk or person",
                ),
                (6, "an empty string in `examples`"),
            ],
        ),
        (
            "normalize conflict",
            "[normalize]\ntidak = [\"gk\"]\nenggak = [\"gk\"]\n",
            &[(3, "`gk` is already mapped to `tidak`")],
        ),
    ];
    for (what, text, want) in cases {
        let err = load(&[("10-a.toml", text)]).expect_err(what);
        let lines: Vec<String> = err.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(err.0.len(), want.len(), "{what}: {lines:#?}");
        for ((line, msg), got) in want.iter().zip(&lines) {
            let prefix = format!("10-a.toml:{line}: ");
            assert!(
                got.starts_with(&prefix) && got.contains(msg),
                "{what}: want {prefix}…{msg}, got {got}"
            );
        }
    }
}

#[test]
fn confidence_is_set_once_and_read_back() {
    let r = load(&[("10-a.toml", "[confidence]\nanswer = 0.9\nclarify = 0.4\n")]).unwrap();
    let c = r.confidence();
    assert_eq!((c.answer, c.clarify, c.confirm_opt_out), (0.9, 0.4, 0.2));
    assert_eq!(rules().confidence(), crate::intents::Confidence::default());
    let err = load(&[
        ("10-a.toml", "[confidence]\nanswer = 0.9\n"),
        ("20-b.toml", "[confidence]\nanswer = 0.8\n"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("20-b.toml:1: `[confidence]` is already set at 10-a.toml:1"),
        "{err}"
    );
}

#[test]
fn errors_from_several_files_are_all_reported() {
    let err = load(&[
        ("10-a.toml", "[[intent]]\nname = \"a\"\naction = \"x\"\n"),
        (
            "20-b.toml",
            "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"{{nope}}\"\n",
        ),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("3 errors in the intent rules:"), "{text}");
    assert!(
        text.contains("10-a.toml:3: intent `a`: unknown action `x`"),
        "{text}"
    );
    assert!(
        text.contains("20-b.toml:2: intent `a`: duplicate intent name"),
        "{text}"
    );
    assert!(
        text.contains("20-b.toml:4: intent `a`: in `reply`: unknown variable `{{nope}}`"),
        "{text}"
    );
}

#[test]
fn config_variables_are_allowed() {
    let text = "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"{{shop.name}}\"\n";
    assert!(load(&[("a.toml", text)]).is_err());
    let opts = LoadOptions {
        config_variables: BTreeSet::from(["shop.name".to_string()]),
    };
    let r = RuleSet::from_sources(&[(PathBuf::from("a.toml"), text.to_string())], &opts).unwrap();
    let out = r
        .get("a")
        .unwrap()
        .reply(0, Lang::Id)
        .unwrap()
        .render(&|_| Some("Toko".into()));
    assert_eq!(out, "Toko");
}

#[test]
fn buttons_are_parsed() {
    let text = "[[intent]]\nname = \"a\"\naction = \"reply\"\nreply = \"x\"\n\n[[intent.buttons]]\nlabel = \"Cek garansi\"\npayload = \"intent:a\"\n";
    let r = load(&[("a.toml", text)]).unwrap();
    assert_eq!(
        r.get("a").unwrap().buttons,
        vec![crate::channels::Button {
            id: "intent:a".into(),
            title: "Cek garansi".into()
        }]
    );
}
