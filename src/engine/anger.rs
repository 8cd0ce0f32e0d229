//! A small, tested heuristic for angry messages, used to raise queue priority.
//!
//! Signals: shouting (mostly capital letters over enough letters), repeated
//! exclamation marks, and anger words in Indonesian and English. Two signals, or
//! one strong anger word, make a message angry. It only reorders the queue; a
//! false positive costs little, a missed angry customer costs more.

/// Words that on their own show anger (normalized to lowercase).
const STRONG: &[&str] = &[
    "penipu",
    "nipu",
    "tipu",
    "bohong",
    "parah",
    "kecewa",
    "kesel",
    "kesal",
    "marah",
    "brengsek",
    "anjing",
    "bangsat",
    "goblok",
    "bodoh",
    "sialan",
    "lapor",
    "ylki",
    "viralkan",
    "viral",
    "scam",
    "fraud",
    "ridiculous",
    "unacceptable",
    "worst",
    "angry",
    "furious",
    "terrible",
    "lawyer",
];

/// Words that add to other signals.
const WEAK: &[&str] = &[
    "lama",
    "lambat",
    "lelet",
    "gak becus",
    "tidak becus",
    "ga becus",
    "cepet",
    "cepat",
    "buruk",
    "jelek",
    "slow",
    "again",
    "lagi",
];

/// Whether a customer message reads as angry.
pub fn is_angry(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| STRONG.contains(w)) {
        return true;
    }
    let mut signals = 0;
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    if letters.len() >= 8 && upper * 10 >= letters.len() * 8 {
        signals += 1;
    }
    if text.contains("!!") || text.contains("?!") || text.contains("!?") {
        signals += 1;
    }
    if WEAK.iter().any(|w| {
        if w.contains(' ') {
            lower.contains(w)
        } else {
            words.contains(w)
        }
    }) {
        signals += 1;
    }
    signals >= 2
}

#[cfg(test)]
mod tests {
    use super::is_angry;

    #[test]
    fn reads_anger() {
        let cases = [
            ("halo kak, pesanan saya belum sampai", false),
            ("kak barangnya rusak, mohon dibantu", false),
            ("Terima kasih banyak kak!", false),
            ("OK", false),
            ("PESANAN SAYA BELUM SAMPAI JUGA!!!", true),
            ("sudah seminggu gak dikirim!! lama banget", true),
            ("PENIPU", true),
            ("saya kecewa sekali dengan pelayanannya", true),
            ("toko penipu, saya lapor ylki", true),
            ("THIS IS UNACCEPTABLE", true),
            ("where is my order??", false),
            ("kok lama ya kak", false),
            ("KAK MAU TANYA", false),
        ];
        for (text, angry) in cases {
            assert_eq!(is_angry(text), angry, "{text}");
        }
    }
}
