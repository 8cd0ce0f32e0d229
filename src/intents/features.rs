//! Hashed sparse features of a normalized message, for the classifier.
//!
//! The input is the normalized text of [`super::normalize`] (lowercase words
//! separated by single spaces, `.` for sentence breaks), so the features see
//! `belum` whether the customer wrote `blm`, `blom` or `belom`. Three groups:
//!
//! - words (`w:paket`): what a message is about;
//! - word pairs within a sentence (`b:belum sampai`): a little word order, so
//!   `tidak mau promo` and `mau promo` differ;
//! - character n-grams of 3 to 5 letters inside each word, with the word's
//!   edges marked (`<pake`, `aket>`): misspellings, unknown inflections and
//!   glued words (`paketnyablmsampe`) still share most of their n-grams.
//!
//! Each feature is a 32-bit hash of its group and text (no vocabulary to store
//! or grow); collisions among the few hundred thousand distinct features of a
//! large rule set are rare and harmless for a linear model. Values are counts,
//! weighted per group, and the vector is scaled to unit length so long and
//! short messages are comparable.

/// One feature: its hash and value.
pub(crate) type Feature = (u32, f32);

/// Weights of the feature groups (relative; the vector is normalized anyway).
const WORD_WEIGHT: f32 = 1.0;
const PAIR_WEIGHT: f32 = 0.7;
const CHAR_WEIGHT: f32 = 0.6;
/// Character n-gram lengths.
const CHAR_MIN: usize = 3;
const CHAR_MAX: usize = 5;

/// Group seeds, so `w:ab` and a char n-gram `ab` hash differently.
const WORD_SEED: u64 = 0x77;
const PAIR_SEED: u64 = 0x62;
const CHAR_SEED: u64 = 0x63;

/// The features of `normalized`, sorted by hash with duplicates summed, scaled
/// to unit length. Empty for an empty message.
pub(crate) fn features(normalized: &str) -> Vec<Feature> {
    let mut out: Vec<Feature> = Vec::with_capacity(normalized.len() * 3 + 8);
    let mut prev: Option<&str> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    for word in normalized.split(' ') {
        if word.is_empty() {
            continue;
        }
        if word == "." {
            prev = None;
            continue;
        }
        out.push((hash(WORD_SEED, word.as_bytes()), WORD_WEIGHT));

        if let Some(p) = prev {
            buf.clear();
            buf.extend_from_slice(p.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(word.as_bytes());
            out.push((hash(PAIR_SEED, &buf), PAIR_WEIGHT));
        }
        prev = Some(word);
        char_ngrams(word, &mut buf, &mut out);
    }
    finish(out)
}

/// Adds the 3- to 5-letter n-grams of `<word>` (character based, so non-ASCII
/// letters are never split).
fn char_ngrams(word: &str, buf: &mut Vec<u8>, out: &mut Vec<Feature>) {
    buf.clear();
    buf.push(b'<');
    buf.extend_from_slice(word.as_bytes());
    buf.push(b'>');
    if buf.is_ascii() {
        // One byte per character: no offsets to collect.
        let chars = buf.len();
        for n in CHAR_MIN..=CHAR_MAX.min(chars) {
            for gram in buf.windows(n) {
                out.push((hash(CHAR_SEED ^ n as u64, gram), CHAR_WEIGHT));
            }
        }
        return;
    }
    // Byte offsets of the character starts, plus the end. `buf` is valid
    // UTF-8: `<`, the word, `>`.
    let text = std::str::from_utf8(buf).unwrap_or_default();
    let mut starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    starts.push(buf.len());
    let chars = starts.len() - 1;
    for n in CHAR_MIN..=CHAR_MAX {
        if chars < n {
            break;
        }
        for i in 0..=chars - n {
            out.push((
                hash(CHAR_SEED ^ n as u64, &buf[starts[i]..starts[i + n]]),
                CHAR_WEIGHT,
            ));
        }
    }
    // A word shorter than the smallest n-gram is covered by its word feature.
}

/// Sorts by hash, sums duplicates and scales to unit length.
fn finish(mut out: Vec<Feature>) -> Vec<Feature> {
    out.sort_unstable_by_key(|f| f.0);
    let mut merged: Vec<Feature> = Vec::with_capacity(out.len());
    for (h, v) in out {
        match merged.last_mut() {
            Some(last) if last.0 == h => last.1 += v,
            _ => merged.push((h, v)),
        }
    }
    let norm = merged.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for f in &mut merged {
            f.1 /= norm;
        }
    }
    merged
}

/// FNV-1a (64-bit) of `bytes` seeded with `seed`, folded to 32 bits.
fn hash(seed: u64, bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[Feature], b: &[Feature]) -> f32 {
        let (mut i, mut j, mut s) = (0, 0, 0.0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += a[i].1 * b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }

    #[test]
    fn unit_length_sorted_and_merged() {
        let f = features("paket paket belum sampai");
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(
            f.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        assert!(features("").is_empty());
        assert!(features(" . ").is_empty());
    }

    #[test]
    fn misspellings_stay_close_and_topics_stay_apart() {
        let a = features("paket saya belum sampai");
        let typo = features("pakett saya belum sampaii");
        let other = features("mau refund uang kembali");
        assert!(dot(&a, &typo) > 0.5, "{}", dot(&a, &typo));
        assert!(dot(&a, &other) < 0.1, "{}", dot(&a, &other));
    }

    #[test]
    fn sentence_breaks_cut_word_pairs() {
        let joined = features("tidak mau promo");
        let split = features("tidak . mau promo");
        assert_ne!(joined, split);
        assert!(dot(&joined, &split) > 0.8);
    }

    #[test]
    fn non_ascii_letters_are_not_split() {
        // Must not panic on multi-byte characters and must produce n-grams.
        let f = features("ありがとう ございます");
        assert!(f.len() > 4);
    }
}
