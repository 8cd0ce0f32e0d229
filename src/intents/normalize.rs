//! Normalization of chat text before matching.
//!
//! Customers write `gk`, `ga`, `gak` and `nggak` for *tidak*, `pagiii minnn` for
//! *pagi min*, and mix in emoji and punctuation. Rules are written once in
//! standard Indonesian and matched against the normalized form, which is built
//! in this order:
//!
//! 1. Unicode NFKD, combining marks dropped (strips diacritics: `café` → `cafe`),
//!    which also applies the compatibility mappings of NFKC (`ｆｕｌｌ` → `full`);
//! 2. lowercase;
//! 3. sentence punctuation (`.`, `,`, `?`, `!`, `;`, `:`, line breaks) becomes a
//!    `.` word, so rules can tell "waterproof gk? bisa dipake" from "gk bisa
//!    dipake"; leading and trailing ones are dropped; everything else that is not
//!    a letter or digit becomes a space (emoji, `/`, `-`);
//! 4. a letter repeated three or more times collapses to one (`pagiii` → `pagi`);
//! 5. Indonesian reduplication written with `2` is expanded (`kirim2` → `kirim kirim`);
//! 6. the synonym map ([`SynonymMap`]) replaces words and phrases, longest match
//!    first; a word ending in the clitic `-nya` whose stem is in the map keeps the
//!    clitic (`sampenya` → `sampainya`);
//! 7. words are joined by single spaces.
//!
//! So the normalized text consists of words of lowercase letters and digits and
//! `.` sentence breaks, separated by single spaces. Spans reported by the matcher index into this text.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Word and phrase replacements applied during normalization (the `[normalize]`
/// tables of the rule files).
///
/// Keys are variant spellings (one or more words, already passed through steps
/// 1–5 of the normalization), values are the canonical replacement.
#[derive(Debug, Clone, Default)]
pub struct SynonymMap {
    /// Variant (space-joined words) → canonical text.
    map: HashMap<String, String>,
    /// The longest variant in words, bounding the phrase search.
    max_words: usize,
}

impl SynonymMap {
    /// An empty map: normalization without replacements.
    pub fn new() -> SynonymMap {
        SynonymMap::default()
    }

    /// Adds `variant` → `canonical`. Both are pre-normalized (without synonyms).
    ///
    /// Returns the canonical text already registered for this variant when it
    /// differs (a conflict the loader reports), or `None` when the variant was new
    /// or mapped to the same text. Empty variants are ignored.
    pub fn insert(&mut self, variant: &str, canonical: &str) -> Option<String> {
        let variant = basic_normalize(variant);
        let canonical = basic_normalize(canonical);
        if variant.is_empty() {
            return None;
        }
        if let Some(existing) = self.map.get(&variant) {
            if *existing != canonical {
                return Some(existing.clone());
            }
            return None;
        }
        self.max_words = self.max_words.max(variant.split(' ').count());
        self.map.insert(variant, canonical);
        None
    }

    /// Maps `canonical` to itself unless it is already mapped, so a multi-word
    /// canonical form (`customer service`) is kept whole instead of having its
    /// words rewritten (`service` → `servis`). The loader calls this for every
    /// canonical form after reading all variants.
    pub fn protect(&mut self, canonical: &str) {
        let c = basic_normalize(canonical);
        if !c.is_empty() && !self.map.contains_key(&c) {
            self.max_words = self.max_words.max(c.split(' ').count());
            self.map.insert(c.clone(), c);
        }
    }

    /// The canonical text of a variant, if mapped.
    pub fn get(&self, variant: &str) -> Option<&str> {
        self.map.get(variant).map(String::as_str)
    }

    /// Number of variants.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no variant is mapped.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Normalizes `text` completely (steps 1–7 of the module docs).
    pub fn normalize(&self, text: &str) -> String {
        let basic = basic_normalize(text);
        if self.map.is_empty() {
            return basic;
        }
        let words: Vec<&str> = basic.split(' ').filter(|w| !w.is_empty()).collect();
        let mut out = String::with_capacity(basic.len() + 8);
        let mut i = 0;
        while i < words.len() {
            let mut consumed = 0;
            // Longest phrase first.
            let max = self.max_words.min(words.len() - i);
            for n in (1..=max).rev() {
                let phrase = words[i..i + n].join(" ");
                if let Some(canonical) = self.map.get(&phrase) {
                    push_word(&mut out, canonical);
                    consumed = n;
                    break;
                }
            }
            if consumed == 0 {
                let word = words[i];
                match word.strip_suffix("nya").and_then(|stem| {
                    (stem.chars().count() >= 2)
                        .then(|| self.map.get(stem))
                        .flatten()
                }) {
                    Some(canonical) if !canonical.is_empty() => {
                        push_word(&mut out, canonical);
                        out.push_str("nya");
                    }
                    _ => push_word(&mut out, word),
                }
                consumed = 1;
            }
            i += consumed;
        }
        out
    }
}

fn push_word(out: &mut String, word: &str) {
    if word.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

/// Characters that end a sentence or clause.
const SENTENCE_BREAKS: &[char] = &['.', ',', '?', '!', ';', ':', '\n', '。', '？', '！'];

/// Steps 1–5 and 7 of the module docs: everything but the synonym map.
pub fn basic_normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    let mut run = 0usize;
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for c in c.to_lowercase() {
            if SENTENCE_BREAKS.contains(&c) {
                if last != Some('.') && !cleaned.is_empty() {
                    if last != Some(' ') {
                        cleaned.push(' ');
                    }
                    cleaned.push_str(". ");
                }
                last = Some('.');
                run = 0;
                continue;
            }
            let c = if c.is_alphanumeric() { c } else { ' ' };
            if c == ' ' {
                if last == Some('.') {
                    continue;
                }
                if last != Some(' ') && !cleaned.is_empty() {
                    cleaned.push(' ');
                }
                last = Some(' ');
                run = 0;
                continue;
            }
            if Some(c) == last {
                run += 1;
            } else {
                run = 1;
            }
            last = Some(c);
            // Collapse letter runs of three or more to one letter: keep the first,
            // and when the third arrives remove the second.
            if c.is_alphabetic() && run >= 3 {
                if run == 3 {
                    cleaned.pop();
                }
                continue;
            }
            cleaned.push(c);
        }
    }
    let trimmed = cleaned.trim_end().trim_end_matches('.').trim_end();
    let mut out = String::with_capacity(trimmed.len() + 8);
    for word in trimmed.split(' ') {
        push_word(&mut out, &expand_reduplication(word));
    }
    out
}

/// `kirim2` → `kirim kirim`, `baling2` → `baling baling`; leaves `bl300`, `h2`,
/// `22` alone (the stem must be at least three letters).
fn expand_reduplication(word: &str) -> String {
    if let Some(stem) = word.strip_suffix('2')
        && stem.chars().count() >= 3
        && stem.chars().all(char::is_alphabetic)
    {
        return format!("{stem} {stem}");
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> SynonymMap {
        let mut m = SynonymMap::new();
        for (variant, canonical) in [
            ("gk", "tidak"),
            ("gak", "tidak"),
            ("nggak", "tidak"),
            ("blm", "belum"),
            ("pesenan", "pesanan"),
            ("nyampe", "sampai"),
            ("sampe", "sampai"),
            ("ass wr wb", "assalamualaikum"),
            ("makasih", "terima kasih"),
            ("cs", "customer service"),
            ("customer service", "customer service"),
            ("service", "servis"),
        ] {
            assert_eq!(m.insert(variant, canonical), None);
        }
        m.insert("servis center", "service center");
        m.protect("service center");
        m
    }

    #[test]
    fn normalization_table() {
        let m = map();
        let cases = [
            ("Halo KAK", "halo kak"),
            ("pagiii minnn 😊", "pagi min"),
            ("halooo kakakkk 👋👋", "halo kakak"),
            ("Café crème", "cafe creme"),
            ("ｆｕｌｌ width", "full width"),
            ("pesenan sy blm nyampe", "pesanan sy belum sampai"),
            ("gk, ga, gak, nggak", "tidak . ga . tidak . tidak"),
            (
                "waterproof gk? bisa dipake renang?",
                "waterproof tidak . bisa dipake renang",
            ),
            ("??", ""),
            ("...halo!!! kak", "halo . kak"),
            ("a.n. Dimas", "a . n . dimas"),
            ("STOP KIRIM2 PESAN", "stop kirim kirim pesan"),
            ("BL-300 h2 22", "bl 300 h2 22"),
            ("ass wr wb kak", "assalamualaikum kak"),
            ("kapan sampenya?", "kapan sampainya"),
            (
                "hubungi cs / customer service",
                "hubungi customer service customer service",
            ),
            ("Hi, min\nresi?", "hi . min . resi"),
            ("makasih!!!", "terima kasih"),
            ("service center", "service center"),
            ("  ", ""),
            ("maaf", "maaf"),
            ("INV/20241103/XYZ", "inv 20241103 xyz"),
            ("bit.ly/dana-kilat", "bit . ly dana kilat"),
            ("tanya", "tanya"),
        ];
        for (input, want) in cases {
            assert_eq!(m.normalize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn conflicting_variant_is_reported() {
        let mut m = map();
        assert_eq!(m.insert("gk", "tidak"), None);
        assert_eq!(m.insert("GK", "enggak"), Some("tidak".to_string()));
    }

    #[test]
    fn empty_map_only_cleans() {
        assert_eq!(SynonymMap::new().normalize("Gk   BISA!!"), "gk bisa");
    }
}
