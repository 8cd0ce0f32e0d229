//! Clarifying questions across turns: what the bot offered, and which offered
//! choice a later message picks.
//!
//! When [`crate::intents::RuleSet::understand`] is unsure it asks (reply
//! buttons on WhatsApp, quick replies on Instagram) and the engine keeps the
//! offered choices on the case ([`OpenQuestion`]). The customer's next
//! message answers it by tapping a button (its payload), or by typing the
//! button's number, its title, or for an opt-out confirmation "ya"/"tidak".
//! Anything else is a new message and is understood as usual. A question is
//! answerable for [`QUESTION_TTL_MS`]; after that a typed "ya" means nothing
//! special any more. Pure functions; the engine does the storing.

use crate::conversation::{Choice, Conversation, OpenQuestion};
use crate::intents::Question;

/// How long a question's typed answers ("1", "ya") count as answers: long
/// enough to read and reply, short enough that a "ya" tomorrow is not taken
/// as consent to something asked today. A tapped button names its intent
/// and needs no time limit; see [`crate::engine`].
pub const QUESTION_TTL_MS: i64 = 60 * 60 * 1000;

/// The question as kept on the case.
pub fn open(question: &Question, confirms_opt_out: bool, now_ms: i64) -> OpenQuestion {
    OpenQuestion {
        asked_ms: now_ms,
        confirms_opt_out,
        choices: question
            .buttons
            .iter()
            .map(|b| Choice {
                payload: b.id.clone(),
                title: b.title.clone(),
            })
            .collect(),
    }
}

/// The case's question, while it can still be answered.
pub fn pending(conv: &Conversation, now_ms: i64) -> Option<&OpenQuestion> {
    conv.question
        .as_ref()
        .filter(|q| now_ms - q.asked_ms < QUESTION_TTL_MS)
}

/// The offered choice a tapped button's payload is.
pub fn by_payload<'a>(q: &'a OpenQuestion, payload: &str) -> Option<&'a Choice> {
    q.choices.iter().find(|c| c.payload == payload.trim())
}

/// Words that answer an opt-out confirmation with its first button.
const YES: &[&str] = &[
    "ya", "iya", "iyaa", "y", "yes", "yup", "ok", "oke", "okay", "betul", "benar", "boleh",
    "setuju",
];
/// Words that answer it with its second.
const NO: &[&str] = &[
    "tidak",
    "tdk",
    "gak",
    "ga",
    "nggak",
    "ngga",
    "enggak",
    "engga",
    "no",
    "nope",
    "jangan",
    "batal",
    "gajadi",
    "tidak jadi",
    "gak jadi",
    "ga jadi",
    "nggak jadi",
];

/// The offered choice a typed message picks: its number ("1", "2"), its
/// title ("status pesanan"), or for an opt-out confirmation a plain yes or
/// no. `None` when the message is something else (then it is understood as a
/// new message).
pub fn by_text<'a>(q: &'a OpenQuestion, text: &str) -> Option<&'a Choice> {
    let t = simplify(text);
    if t.is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| q.choices.get(i));
    }
    if let Some(c) = q.choices.iter().find(|c| simplify(&c.title) == t) {
        return Some(c);
    }
    if q.confirms_opt_out {
        // "ya kak", "tidak min": the first word (or two) decide.
        let words: Vec<&str> = t.split(' ').collect();
        let head1 = words[0];
        let head2 = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let short = words.len() <= 3;
        if short && (NO.contains(&head2.as_str()) || NO.contains(&head1)) {
            return q.choices.get(1);
        }
        if short && YES.contains(&head1) {
            return q.choices.first();
        }
    }
    None
}

/// Lowercase words without punctuation, single-spaced.
fn simplify(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Button;

    fn question(confirms: bool) -> OpenQuestion {
        let b = |id: &str, title: &str| Button {
            id: id.into(),
            title: title.into(),
        };
        let q = if confirms {
            Question {
                body: "Berhenti menerima promo?".into(),
                buttons: vec![b("intent:opt_out", "Ya, berhenti"), b("optout:no", "Tidak")],
            }
        } else {
            Question {
                body: "Maksud Kakak?".into(),
                buttons: vec![
                    b("intent:order_status", "Status pesanan"),
                    b("intent:payment", "Pembayaran"),
                    b("intent:human_agent", "Bicara dengan CS"),
                ],
            }
        };
        open(&q, confirms, 1_000)
    }

    #[test]
    fn typed_answers_table() {
        let topics = question(false);
        let confirm = question(true);
        let cases: &[(&OpenQuestion, &str, Option<&str>)] = &[
            (&topics, "1", Some("intent:order_status")),
            (&topics, " 2. ", Some("intent:payment")),
            (&topics, "3", Some("intent:human_agent")),
            (&topics, "4", None),
            (&topics, "0", None),
            (&topics, "status pesanan", Some("intent:order_status")),
            (&topics, "Pembayaran!", Some("intent:payment")),
            (&topics, "bicara dengan cs", Some("intent:human_agent")),
            // Not an answer: understood as a new message.
            (&topics, "ya", None),
            (&topics, "pembayaran saya gagal terus", None),
            (&topics, "", None),
            (&confirm, "ya", Some("intent:opt_out")),
            (&confirm, "Iya kak", Some("intent:opt_out")),
            (&confirm, "ya, berhenti", Some("intent:opt_out")),
            (&confirm, "tidak", Some("optout:no")),
            (&confirm, "gak jadi kak", Some("optout:no")),
            (&confirm, "no", Some("optout:no")),
            (&confirm, "2", Some("optout:no")),
            // A longer message is a message, not a yes.
            (&confirm, "ya tapi paket saya belum sampai juga", None),
        ];
        for (q, text, want) in cases {
            let got = by_text(q, text).map(|c| c.payload.as_str());
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn payloads_and_expiry() {
        let q = question(false);
        assert_eq!(
            by_payload(&q, "intent:payment").map(|c| c.title.as_str()),
            Some("Pembayaran")
        );
        assert!(by_payload(&q, "intent:warranty").is_none());
        let mut conv = Conversation::open(
            "c".into(),
            crate::channels::Channel::WhatsApp,
            "62".into(),
            0,
        );
        assert!(pending(&conv, 1_000).is_none());
        conv.question = Some(q);
        assert!(pending(&conv, 1_000 + QUESTION_TTL_MS - 1).is_some());
        assert!(pending(&conv, 1_000 + QUESTION_TTL_MS).is_none());
    }
}
