//! Which language to answer in: Indonesian or English.
//!
//! A small stopword heuristic is enough: customers either write Indonesian
//! (often with English words mixed in) or English. A message counts as English
//! only when it has more English than Indonesian function words; everything
//! else, including a bare `stop` or an emoji, gets Indonesian.

use serde::{Deserialize, Serialize};

/// A reply language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Indonesian, the default.
    #[default]
    Id,
    /// English.
    En,
}

const ENGLISH: &[&str] = &[
    "the",
    "is",
    "are",
    "was",
    "i",
    "i'd",
    "im",
    "you",
    "your",
    "my",
    "me",
    "to",
    "for",
    "of",
    "and",
    "a",
    "an",
    "it",
    "its",
    "can",
    "could",
    "do",
    "does",
    "did",
    "please",
    "what",
    "where",
    "when",
    "how",
    "why",
    "which",
    "with",
    "this",
    "that",
    "have",
    "has",
    "not",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank",
    "want",
    "would",
    "like",
    "still",
    "yes",
    "there",
    "good",
    "morning",
    "afternoon",
    "evening",
    "be",
    "on",
    "in",
    "from",
    "if",
    "will",
    "should",
    "any",
    "get",
    "am",
    "been",
    "about",
    "much",
    "many",
    "any",
    "we",
    "our",
    "us",
    "they",
    "won",
    "who",
    "last",
    "night",
    "received",
    "bought",
    "sell",
    "speak",
    "talk",
    "real",
    "person",
];

const INDONESIAN: &[&str] = &[
    "yang",
    "yg",
    "dan",
    "di",
    "ke",
    "dari",
    "dr",
    "ini",
    "itu",
    "saya",
    "sy",
    "aku",
    "kak",
    "kakak",
    "min",
    "gan",
    "sis",
    "ya",
    "tidak",
    "gk",
    "ga",
    "gak",
    "nggak",
    "mau",
    "bisa",
    "bs",
    "sudah",
    "udh",
    "udah",
    "belum",
    "blm",
    "apa",
    "ada",
    "dong",
    "kok",
    "sih",
    "tolong",
    "kapan",
    "berapa",
    "brp",
    "gimana",
    "gmn",
    "bagaimana",
    "makasih",
    "terima",
    "kasih",
    "halo",
    "pagi",
    "siang",
    "sore",
    "malam",
    "buat",
    "untuk",
    "utk",
    "sama",
    "sm",
    "juga",
    "jg",
    "lagi",
    "lg",
    "aja",
    "saja",
    "kalau",
    "klo",
    "kalo",
    "tapi",
    "tp",
    "masih",
    "dengan",
    "dgn",
    "pesanan",
    "barang",
    "nya",
    "nih",
    "deh",
    "kah",
    "punya",
    "beli",
    "jam",
    "buka",
    "harga",
    "gue",
    "gw",
    "kenapa",
    "knp",
    "cara",
    "mana",
    "dmn",
    "mas",
    "mbak",
    "pak",
    "bu",
    "selamat",
    "permisi",
    "assalamualaikum",
    "nanya",
    "tanya",
    "minta",
];

/// Guesses the language of a customer message.
pub fn detect_language(text: &str) -> Lang {
    let lower = text.to_lowercase();
    let mut en = 0usize;
    let mut id = 0usize;
    for word in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let word = word.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        if ENGLISH.contains(&word) {
            en += 1;
        }
        if INDONESIAN.contains(&word) {
            id += 1;
        }
    }
    if en > id { Lang::En } else { Lang::Id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_table() {
        let cases = [
            ("halo kak", Lang::Id),
            ("Hello", Lang::En),
            ("Hi there, good morning!", Lang::En),
            ("Where is my package? Tracking shows stuck", Lang::En),
            (
                "I want to return this item and get my money back please",
                Lang::En,
            ),
            ("min paket sy blm nyampe jg", Lang::Id),
            ("barangnya broken kak, layar smartwatchnya retak", Lang::Id),
            ("bisa COD gk kak?", Lang::Id),
            ("stop", Lang::Id),
            ("🙏", Lang::Id),
            ("", Lang::Id),
            ("Can I pay with credit card?", Lang::En),
            ("ok kak, terima kasih banyak atas infonya", Lang::Id),
            ("Thanks, that's all", Lang::En),
        ];
        for (text, want) in cases {
            assert_eq!(detect_language(text), want, "{text:?}");
        }
    }
}
