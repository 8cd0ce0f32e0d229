//! More training messages from the examples: the same request with a greeting
//! in front, and with the typos and abbreviations customers make.
//!
//! Authors write an example once; customers write it a hundred ways. Two kinds
//! of variation are cheap to add and do not change what a message means:
//!
//! - a greeting or pleasantry in front (`halo kak . paket saya belum sampai`),
//!   taken from the short examples of the small-talk intents, which teaches the
//!   model that the greeting does not decide a request;
//! - one word misspelt: vowels dropped (`kirim` → `krm`), a letter dropped,
//!   doubled or swapped with its neighbour.
//!
//! Variants are made from the normalized text, deterministically (seeded).

/// A copy of `normalized` with one word of four or more letters misspelt; the
/// text unchanged when it has no such word.
pub(crate) fn misspell(normalized: &str, rng: &mut fastrand::Rng) -> String {
    let words: Vec<&str> = normalized.split(' ').collect();
    let long: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() >= 4 && w.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|(i, _)| i)
        .collect();
    if long.is_empty() {
        return normalized.to_string();
    }
    let target = long[rng.usize(..long.len())];
    let w = words[target].as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(w.len() + 1);
    match rng.u8(..4) {
        // Abbreviation: the vowels after the first letter dropped.
        0 => {
            out.push(w[0]);
            out.extend(w[1..].iter().filter(|b| !b"aeiou".contains(b)));
            if out.len() < 2 {
                out = w.to_vec();
            }
        }
        // A letter dropped.
        1 => {
            let i = rng.usize(1..w.len());
            out.extend_from_slice(&w[..i]);
            out.extend_from_slice(&w[i + 1..]);
        }
        // A letter doubled.
        2 => {
            let i = rng.usize(..w.len());
            out.extend_from_slice(&w[..=i]);
            out.extend_from_slice(&w[i..]);
        }
        // Two neighbours swapped.
        _ => {
            out.extend_from_slice(w);
            let i = rng.usize(1..w.len() - 1);
            out.swap(i, i + 1);
        }
    }
    let word = String::from_utf8(out).unwrap_or_else(|_| words[target].to_string());
    words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == target { word.as_str() } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `greeting . normalized`.
pub(crate) fn greeted(greeting: &str, normalized: &str) -> String {
    format!("{greeting} . {normalized}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_change_one_word() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50 {
            let text = "paket saya belum sampai";
            let out = misspell(text, &mut rng);
            let changed = text
                .split(' ')
                .zip(out.split(' '))
                .filter(|(a, b)| a != b)
                .count();
            assert!(changed <= 1, "{out}");
            assert_eq!(out.split(' ').count(), 4, "{out}");
        }
        assert_eq!(misspell("ok . ya", &mut rng), "ok . ya");
        assert_eq!(misspell("", &mut rng), "");
    }

    #[test]
    fn greeting_in_front() {
        assert_eq!(
            greeted("halo kak", "paket belum sampai"),
            "halo kak . paket belum sampai"
        );
    }
}
