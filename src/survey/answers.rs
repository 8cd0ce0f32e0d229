//! Reading survey answers from what customers actually send.
//!
//! Taps on our buttons carry payloads; people also type a digit, a number word
//! ("lima", "five"), an emoji, or a word ("mantap", "kecewa", "biasa aja").
//! Pure functions, tested with a table.

/// The question being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Customer satisfaction, 1–5.
    Csat,
    /// Net promoter score, 0–10.
    Nps,
    /// Customer effort, 1–5 (5 = very easy).
    Ces,
}

impl Scale {
    fn range(self) -> (u8, u8) {
        match self {
            Scale::Csat | Scale::Ces => (1, 5),
            Scale::Nps => (0, 10),
        }
    }
}

/// Reads a payload of ours: `survey:<case>:<step>:<value>`, or a template
/// quick-reply payload ending in a value or a word (`survei:<case>:puas`).
pub fn parse_payload(payload: &str, scale: Scale) -> Option<u8> {
    let last = payload.rsplit(':').next()?;
    if !(payload.starts_with("survey:") || payload.starts_with("survei:")) {
        return None;
    }
    parse_text(last, scale)
}

/// Reads a typed answer; `None` when it is not an answer to `scale`.
pub fn parse_text(text: &str, scale: Scale) -> Option<u8> {
    let t = text.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    let (lo, hi) = scale.range();
    let in_range = |n: u8| (lo..=hi).contains(&n).then_some(n);
    // A lone number, possibly with "/5", "/10", "bintang", "stars", "nilai".
    let stripped: String = t
        .replace("bintang", " ")
        .replace("stars", " ")
        .replace("star", " ")
        .replace("nilai", " ")
        .replace("score", " ")
        .replace("/10", " ")
        .replace("/5", " ")
        .replace(['.', '!', ',', '⭐'], " ");
    let words: Vec<&str> = stripped.split_whitespace().collect();
    // One number, alone or with polite filler ("5 kak", "4 ya min").
    let (numbers, rest): (Vec<&str>, Vec<&str>) = words
        .iter()
        .partition(|w| w.chars().all(|c| c.is_ascii_digit()));
    if numbers.len() == 1
        && rest.iter().all(|w| FILLER.contains(w))
        && let Ok(n) = numbers[0].parse::<u8>()
    {
        return in_range(n);
    }
    // Stars typed as emoji.
    let stars = text.matches('⭐').count();
    if stars > 0 && words.is_empty() {
        return u8::try_from(stars).ok().and_then(in_range);
    }
    if words.len() <= 3
        && let Some(n) = words.iter().find_map(|w| number_word(w))
    {
        return in_range(n);
    }
    if scale == Scale::Nps {
        return None;
    }
    if let Some(n) = emoji_score(text) {
        return Some(n);
    }
    word_score(&t, scale)
}

/// Words that may surround a typed score without changing it.
const FILLER: &[&str] = &[
    "kak", "kakak", "ka", "min", "admin", "gan", "sis", "ya", "yah", "deh", "dong", "aja", "saja",
    "sih", "ok", "oke", "please", "pls", "thanks", "makasih",
];

fn number_word(w: &str) -> Option<u8> {
    Some(match w {
        "nol" | "zero" => 0,
        "satu" | "one" => 1,
        "dua" | "two" => 2,
        "tiga" | "three" => 3,
        "empat" | "four" => 4,
        "lima" | "five" => 5,
        "enam" | "six" => 6,
        "tujuh" | "seven" => 7,
        "delapan" | "eight" => 8,
        "sembilan" | "nine" => 9,
        "sepuluh" | "ten" => 10,
        _ => return None,
    })
}

fn emoji_score(text: &str) -> Option<u8> {
    const TABLE: &[(&str, u8)] = &[
        ("😡", 1),
        ("🤬", 1),
        ("😠", 1),
        ("👎", 1),
        ("😭", 1),
        ("😞", 2),
        ("🙁", 2),
        ("☹", 2),
        ("😕", 2),
        ("😢", 2),
        ("😟", 2),
        ("😐", 3),
        ("😑", 3),
        ("😶", 3),
        ("🙂", 4),
        ("😊", 4),
        ("👍", 4),
        ("😀", 4),
        ("😃", 4),
        ("😍", 5),
        ("🤩", 5),
        ("🥰", 5),
        ("❤", 5),
        ("💯", 5),
        ("😁", 5),
        ("🔥", 5),
    ];
    // Only when the message is (almost) nothing but emoji.
    if text.chars().filter(|c| c.is_alphanumeric()).count() > 0 {
        return None;
    }
    TABLE
        .iter()
        .filter(|(e, _)| text.contains(e))
        .map(|(_, s)| *s)
        .next()
}

fn word_score(t: &str, scale: Scale) -> Option<u8> {
    // Longest phrases first so "sangat tidak puas" is not read as "puas".
    const CSAT: &[(&str, u8)] = &[
        ("sangat tidak puas", 1),
        ("sangat kecewa", 1),
        ("very dissatisfied", 1),
        ("very unsatisfied", 1),
        ("kurang puas", 2),
        ("tidak puas", 2),
        ("gak puas", 2),
        ("ga puas", 2),
        ("nggak puas", 2),
        ("dissatisfied", 2),
        ("unsatisfied", 2),
        ("not satisfied", 2),
        ("biasa saja", 3),
        ("biasa aja", 3),
        ("lumayan", 3),
        ("cukup", 3),
        ("okay", 3),
        ("neutral", 3),
        ("so so", 3),
        ("sangat puas", 5),
        ("puas banget", 5),
        ("puas sekali", 5),
        ("very satisfied", 5),
        ("mantap", 5),
        ("mantab", 5),
        ("keren", 5),
        ("excellent", 5),
        ("amazing", 5),
        ("terbaik", 5),
        ("sempurna", 5),
        ("puas", 4),
        ("satisfied", 4),
        ("bagus", 4),
        ("baik", 4),
        ("good", 4),
        ("oke", 4),
        ("ok", 4),
        ("jelek", 1),
        ("buruk", 1),
        ("parah", 1),
        ("kecewa", 1),
        ("terrible", 1),
        ("awful", 1),
        ("bad", 2),
        ("biasa", 3),
    ];
    const CES: &[(&str, u8)] = &[
        ("sangat sulit", 1),
        ("sangat susah", 1),
        ("very difficult", 1),
        ("very hard", 1),
        ("sulit", 2),
        ("susah", 2),
        ("ribet", 2),
        ("difficult", 2),
        ("hard", 2),
        ("biasa", 3),
        ("lumayan", 3),
        ("neutral", 3),
        ("sangat mudah", 5),
        ("gampang banget", 5),
        ("very easy", 5),
        ("mudah", 4),
        ("gampang", 4),
        ("easy", 4),
    ];
    let table = if scale == Scale::Ces { CES } else { CSAT };
    if t.chars().count() > 40 {
        return None;
    }
    let padded = format!(" {} ", t.replace(|c: char| !c.is_alphanumeric(), " "));
    table
        .iter()
        .find(|(w, _)| padded.contains(&format!(" {w} ")))
        .map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csat_answers() {
        let cases: &[(&str, Option<u8>)] = &[
            ("5", Some(5)),
            (" 4 ", Some(4)),
            ("1", Some(1)),
            ("6", None),
            ("0", None),
            ("5/5", Some(5)),
            ("3 bintang", Some(3)),
            ("lima", Some(5)),
            ("Five", Some(5)),
            ("dua", Some(2)),
            ("😡", Some(1)),
            ("😞", Some(2)),
            ("😐", Some(3)),
            ("🙂", Some(4)),
            ("😍😍", Some(5)),
            ("⭐⭐⭐⭐", Some(4)),
            ("sangat puas", Some(5)),
            ("Puas", Some(4)),
            ("puas kak", Some(4)),
            ("biasa aja", Some(3)),
            ("kurang puas", Some(2)),
            ("sangat tidak puas", Some(1)),
            ("kecewa", Some(1)),
            ("mantap", Some(5)),
            ("jelek", Some(1)),
            ("very satisfied", Some(5)),
            ("pesanan saya yang lain belum sampai kak, tolong cek", None),
            ("halo", None),
            ("makasih", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_text(text, Scale::Csat), *expected, "{text}");
        }
    }

    #[test]
    fn nps_and_ces_answers() {
        assert_eq!(parse_text("10", Scale::Nps), Some(10));
        assert_eq!(parse_text("0", Scale::Nps), Some(0));
        assert_eq!(parse_text("sembilan", Scale::Nps), Some(9));
        assert_eq!(parse_text("11", Scale::Nps), None);
        assert_eq!(parse_text("mantap", Scale::Nps), None);
        assert_eq!(parse_text("gampang banget", Scale::Ces), Some(5));
        assert_eq!(parse_text("ribet", Scale::Ces), Some(2));
        assert_eq!(parse_text("3", Scale::Ces), Some(3));
        assert_eq!(parse_text("10/10", Scale::Nps), Some(10));
        assert_eq!(parse_text("9 kak", Scale::Nps), Some(9));
        assert_eq!(parse_text("😍", Scale::Nps), None);
        assert_eq!(parse_text("sangat mudah kak", Scale::Ces), Some(5));
    }

    /// How people really answer in chat: a number with a polite word, stars,
    /// "nilai", slang.
    #[test]
    fn csat_answers_as_typed_in_chat() {
        let cases: &[(&str, Option<u8>)] = &[
            ("5 kak", Some(5)),
            ("4 ya kak", Some(4)),
            ("nilai 5 kak", Some(5)),
            ("4/5", Some(4)),
            ("⭐⭐⭐⭐⭐", Some(5)),
            ("5!", Some(5)),
            ("ga puas", Some(2)),
            ("gak puas kak", Some(2)),
            ("mantap kak 👍", Some(5)),
            ("biasa", Some(3)),
            ("2 hari belum sampai", None),
            ("order 12345 kak", None),
            ("5 6", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_text(text, Scale::Csat), *expected, "{text}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(
            parse_payload("survey:20261122-AB:csat:5", Scale::Csat),
            Some(5)
        );
        assert_eq!(
            parse_payload("survey:20261122-AB:nps:10", Scale::Nps),
            Some(10)
        );
        assert_eq!(
            parse_payload("survei:TKT-20260512-0042:puas", Scale::Csat),
            Some(4)
        );
        assert_eq!(parse_payload("intent:greeting", Scale::Csat), None);
    }
}
