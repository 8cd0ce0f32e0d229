//! The search index of conversations: phone numbers and IGSIDs, contact
//! names, case ids, order and tracking numbers, and the words of messages.
//!
//! Words are indexed: one sorted index per term (`search:t:<digest>`) holds
//! the conversations the term appeared in, scored by the negated time it last
//! appeared, so an ascending range reads the most recent first. A message's
//! words are indexed (and their time refreshed) with every message; the
//! contact's name is indexed once per case.
//!
//! Ids are looked up, not indexed: a query term that is a case id names that
//! case, and one that is a WhatsApp number or an Instagram IGSID names the
//! cases of that contact. Indexing them cost every new case three indexes of
//! its own (its id, the number, the name), each a write at a random place in
//! the store: a quarter of the embedded store's work per message under load
//! (`BENCHMARKS.md`, issue 14 phase F), for what a key lookup answers.
//!
//! A query reads the index of its rarest term (with the cases its ids name)
//! page by page and checks the other terms by score lookup: the work per page
//! is bounded by the scan budget, never by the number of conversations, and
//! the same code runs on every backend. Each term index is its own key (no
//! hash tag): they spread over a cluster by themselves, and no call combines
//! two of them atomically.
//!
//! Terms are phone numbers and names, so keys carry a digest of the term
//! ([`super::id_digest`]), never the term itself; and each conversation
//! keeps the list of digests it was indexed under (`search:of:<case>`), so
//! erasing a contact or deleting a case removes the case from every term
//! index ([`Store::forget_search`]) and nothing of it stays findable.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreResult, id_digest};
use crate::channels::Channel;
use crate::conversation::Conversation;

/// Most terms kept from one text (the first ones).
const MAX_TERMS_PER_TEXT: usize = 64;
/// Longest term kept, in bytes.
const MAX_TERM_LEN: usize = 64;
/// Most terms in one query.
pub const MAX_QUERY_TERMS: usize = 6;

/// Most distinct terms one conversation is indexed under; past this only the
/// terms it already has are refreshed (bounded work and storage per case).
const MAX_TERMS_PER_CONVERSATION: usize = 4_000;

fn term_key_of_digest(digest: &str) -> String {
    format!("search:t:{digest}")
}

fn term_key(term: &str) -> String {
    term_key_of_digest(&id_digest(term))
}

/// The term digests a conversation is indexed under.
fn terms_of_key(conversation_id: &str) -> String {
    format!("search:of:{conversation_id}")
}

/// The document at [`terms_of_key`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexedTerms {
    /// Digests of the terms, in the order first indexed.
    digests: Vec<String>,
}

/// Characters that join the parts of an order or tracking number
/// (`INV-1001`, `INV/2026/1001`, `JNE.123`).
fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '/' | '.' | '_' | '#')
}

/// A phone number in one form, so it is one term whichever way it was
/// written: Indonesian numbers as `62…` (`0812…` becomes `62812…`), others
/// (IGSIDs, order numbers) as written.
fn canonical_number(digits: &str) -> String {
    match digits.strip_prefix('0') {
        Some(rest) if !rest.starts_with('0') => format!("62{rest}"),
        _ => digits.to_string(),
    }
}

/// Words too common in customers' messages to find anything by, in
/// Indonesian and English chat (greetings, pronouns, particles, politeness):
/// nearly every case has them, so they are neither indexed nor searched for.
/// Indexing them would cost a write per word per message and a query with
/// them would have to check them for every candidate. Sorted (binary search).
const STOP_WORDS: &[&str] = &[
    "aja", "aku", "and", "apa", "are", "atau", "bang", "belum", "bisa", "blm", "buat", "but",
    "can", "dan", "dari", "deh", "dengan", "di", "dong", "for", "ga", "gak", "gan", "gimana",
    "gitu", "gk", "gue", "gw", "hai", "hallo", "halo", "have", "hello", "hi", "ini", "is", "it",
    "itu", "iya", "juga", "ka", "kak", "kaka", "kakak", "kasih", "ke", "kok", "lagi", "mau", "me",
    "min", "mohon", "my", "nggak", "nih", "no", "not", "of", "ok", "oke", "on", "or", "please",
    "pls", "saya", "sih", "sudah", "sy", "terima", "thank", "thanks", "that", "the", "this", "to",
    "tolong", "udah", "untuk", "was", "with", "ya", "yang", "yes", "you",
];

fn is_stop_word(term: &str) -> bool {
    STOP_WORDS.binary_search(&term).is_ok()
}

/// The terms of a chunk of text between spaces: the chunk itself (lowercase,
/// without surrounding punctuation) unless it is a [`STOP_WORDS`] word, and
/// for `INV-1001` also `inv`, `1001` and `inv1001`; a phone number in its
/// one form ([`canonical_number`]).
fn chunk_terms(chunk: &str, out: &mut Vec<String>) {
    let trimmed = chunk.trim_matches(|c: char| !c.is_alphanumeric());
    if trimmed.is_empty() {
        return;
    }
    let lower = trimmed.to_lowercase();
    let digits: String = lower
        .chars()
        .filter(|c| !is_joiner(*c) && *c != '+')
        .collect();
    if digits.len() >= 8 && digits.chars().all(|c| c.is_ascii_digit()) {
        out.push(canonical_number(&digits));
        if digits != lower {
            out.push(lower);
        }
        return;
    }
    if !is_stop_word(&lower) {
        out.push(lower.clone());
    }
    if lower.contains(is_joiner) {
        let parts: Vec<&str> = lower.split(is_joiner).filter(|p| !p.is_empty()).collect();
        out.extend(parts.iter().map(|p| p.to_string()));
        out.push(parts.concat());
    }
}

/// The search terms of a text, deduplicated, in order of first appearance.
pub fn terms(text: &str) -> Vec<String> {
    let mut raw = Vec::new();
    for chunk in text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';'
                    | ':'
                    | '!'
                    | '?'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '"'
                    | '\''
                    | '*'
                    | '<'
                    | '>'
                    | '{'
                    | '}'
                    | '='
            )
    }) {
        chunk_terms(chunk, &mut raw);
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        if t.chars().count() < 2 || t.len() > MAX_TERM_LEN || out.contains(&t) {
            continue;
        }
        out.push(t);
        if out.len() >= MAX_TERMS_PER_TEXT {
            break;
        }
    }
    out
}

/// The terms a query must all match: each word of the query as written
/// (`INV-1001` stays one term) except the very common words, a phone number typed
/// with spaces, `+` or dashes as its digits, in its one indexed form. At
/// most [`MAX_QUERY_TERMS`].
pub fn query_terms(q: &str) -> Vec<String> {
    let compact: String = q
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '+' | '-' | '(' | ')' | '.'))
        .collect();
    if compact.len() >= 8 && compact.chars().all(|c| c.is_ascii_digit()) {
        return vec![canonical_number(&compact)];
    }
    let mut out = Vec::new();
    for word in q.split_whitespace() {
        let t = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let t = if t.len() >= 8 && t.chars().all(|c| c.is_ascii_digit()) {
            canonical_number(&t)
        } else {
            t
        };
        if t.chars().count() >= 2
            && t.len() <= MAX_TERM_LEN
            && !is_stop_word(&t)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out.truncate(MAX_QUERY_TERMS);
    out
}

/// Where a search page ended: the score and member of the last entry read.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchCursor {
    score: f64,
    member: String,
}

impl SearchCursor {
    /// The opaque text form for APIs.
    pub fn encode(&self) -> String {
        format!("{}~{}", self.score as i64, self.member)
    }

    /// Parses [`SearchCursor::encode`]'s form.
    pub fn decode(s: &str) -> Option<SearchCursor> {
        let (score, member) = s.split_once('~')?;
        Some(SearchCursor {
            score: score.parse::<i64>().ok()? as f64,
            member: member.to_string(),
        })
    }
}

/// One page of matches (most recent first) and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Conversation ids that match every term.
    pub ids: Vec<String>,
    /// `None` when the index has been read to its end.
    pub next: Option<SearchCursor>,
}

impl Store {
    /// Makes a conversation findable by the terms of `texts` (message text:
    /// each term's time is set to `at_ms`, so the conversation comes first
    /// for it) and of `names` (the contact's name: only terms the
    /// conversation is not findable by yet are added, so a name costs no
    /// write after the first message of a case). Ids (the case's, the
    /// contact's number) need no indexing: [`Store::search`] looks them up.
    pub async fn index_for_search(
        &self,
        conversation_id: &str,
        texts: &[&str],
        names: &[&str],
        at_ms: i64,
    ) -> StoreResult<()> {
        let digests_of = |texts: &[&str]| {
            let mut all: Vec<String> = Vec::new();
            for text in texts {
                for t in terms(text) {
                    let d = id_digest(&t);
                    if !all.contains(&d) {
                        all.push(d);
                    }
                }
            }
            all
        };
        let mut refreshed = digests_of(texts);
        refreshed.truncate(MAX_TERMS_PER_TEXT * 2);
        let named: Vec<String> = digests_of(names)
            .into_iter()
            .filter(|d| !refreshed.contains(d))
            .take(MAX_TERMS_PER_TEXT)
            .collect();
        if refreshed.is_empty() && named.is_empty() {
            return Ok(());
        }
        // The list first: a term index never names the case unless the
        // case's list names the term, so forgetting it always finds it.
        let mut kept = Vec::new();
        self.update_json::<IndexedTerms, StoreError, _>(&terms_of_key(conversation_id), |doc| {
            let mut doc = doc.unwrap_or_default();
            kept.clear();
            let mut changed = false;
            for d in &refreshed {
                if doc.digests.contains(d) {
                    kept.push(d.clone());
                } else if doc.digests.len() < MAX_TERMS_PER_CONVERSATION {
                    doc.digests.push(d.clone());
                    kept.push(d.clone());
                    changed = true;
                }
            }
            for d in &named {
                if !doc.digests.contains(d) && doc.digests.len() < MAX_TERMS_PER_CONVERSATION {
                    doc.digests.push(d.clone());
                    kept.push(d.clone());
                    changed = true;
                }
            }
            Ok(changed.then_some(doc))
        })
        .await?;
        if kept.is_empty() {
            return Ok(());
        }
        let entries: Vec<(String, String, f64)> = kept
            .iter()
            .map(|d| {
                (
                    term_key_of_digest(d),
                    conversation_id.to_string(),
                    -(at_ms as f64),
                )
            })
            .collect();
        self.backend.index_put_many(&entries).await
    }

    /// Makes a conversation unfindable: removes it from every term index it
    /// was put in, and its list of terms (erasure, retention, deleting a
    /// case). Returns how many terms it was findable by.
    pub async fn forget_search(&self, conversation_id: &str) -> StoreResult<usize> {
        let key = terms_of_key(conversation_id);
        let Some(doc) = self.get_json::<IndexedTerms>(&key).await? else {
            return Ok(0);
        };
        for d in &doc.digests {
            self.backend
                .index_remove(&term_key_of_digest(d), conversation_id)
                .await?;
        }
        self.backend.doc_delete(&key).await?;
        Ok(doc.digests.len())
    }

    /// The cases a query term names by id, each with its search score (the
    /// negated time of its latest activity, as in the term indexes): the case
    /// itself for a case id, and for a number the cases of the WhatsApp
    /// contact with that number and of the Instagram contact with that IGSID.
    async fn named_cases(&self, term: &str) -> StoreResult<Vec<(f64, String)>> {
        let mut ids = Vec::new();
        if is_case_id(term) {
            ids.push(term.to_ascii_uppercase());
        }
        if term.len() >= 8 && term.bytes().all(|b| b.is_ascii_digit()) {
            for channel in [Channel::WhatsApp, Channel::Instagram] {
                if let Some(contact) = self.contact(channel, term).await? {
                    ids.extend(contact.cases);
                }
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .conversations(&ids)
            .await?
            .into_iter()
            // An erased contact's cases are kept for reports, found by nobody.
            .filter(|c| !c.is_erased())
            .map(|c| (-(last_activity_ms(&c) as f64), c.id))
            .collect())
    }

    /// Reads up to `scan` entries of the rarest term's index (and the cases
    /// it names by id) after `after` and returns those that match every term
    /// (at most `limit`).
    pub async fn search(
        &self,
        terms: &[String],
        after: Option<&SearchCursor>,
        limit: usize,
        scan: usize,
    ) -> StoreResult<SearchPage> {
        let nothing = SearchPage {
            ids: Vec::new(),
            next: None,
        };
        if terms.is_empty() || limit == 0 {
            return Ok(nothing);
        }
        let mut sources = Vec::with_capacity(terms.len());
        for t in terms {
            let index = term_key(t);
            let named = self.named_cases(t).await?;
            let n = self.backend.index_len(&index).await? + named.len() as u64;
            if n == 0 {
                return Ok(nothing);
            }
            sources.push((n, TermSource { index, named }));
        }
        sources.sort_by_key(|(n, _)| *n);
        let mut sources = sources.into_iter().map(|(_, s)| s);
        let Some(driver) = sources.next() else {
            return Ok(nothing);
        };
        let others: Vec<TermSource> = sources.collect();
        let mut ids = Vec::new();
        let mut cursor = after.cloned();
        let mut scanned = 0;
        const BATCH: usize = 200;
        loop {
            let after_cursor = |score: f64, member: &str| {
                cursor.as_ref().is_none_or(|c| {
                    score > c.score || (score == c.score && member > c.member.as_str())
                })
            };
            let min = cursor.as_ref().map_or(f64::MIN, |c| c.score);
            let batch = self
                .backend
                .index_range(&driver.index, min, f64::MAX, BATCH + 1)
                .await?;
            // Up to where the index has been read, the cases named by id
            // join in score order; one indexed before ids were looked up
            // (an older version indexed them) comes once, as named.
            let read_to = (batch.len() > BATCH)
                .then(|| batch.last().map(|(m, s)| (*s, m.clone())))
                .flatten();
            let mut fresh: Vec<(f64, String)> = batch
                .into_iter()
                .filter(|(m, s)| after_cursor(*s, m) && !driver.names(m))
                .map(|(m, s)| (s, m))
                .collect();
            fresh.extend(
                driver
                    .named
                    .iter()
                    .filter(|(s, m)| {
                        after_cursor(*s, m)
                            && read_to
                                .as_ref()
                                .is_none_or(|(ls, lm)| *s < *ls || (*s == *ls && m <= lm))
                    })
                    .cloned(),
            );
            fresh.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            fresh.dedup_by(|a, b| a.1 == b.1);
            if fresh.is_empty() {
                return Ok(SearchPage { ids, next: None });
            }
            for (score, member) in fresh {
                scanned += 1;
                let mut all = true;
                for other in &others {
                    if !other.names(&member)
                        && self
                            .backend
                            .index_score(&other.index, &member)
                            .await?
                            .is_none()
                    {
                        all = false;
                        break;
                    }
                }
                cursor = Some(SearchCursor {
                    score,
                    member: member.clone(),
                });
                if all {
                    ids.push(member);
                }
                if ids.len() >= limit || scanned >= scan {
                    return Ok(SearchPage { ids, next: cursor });
                }
            }
        }
    }
}

/// Where one query term's matches come from: its index, and the cases it
/// names by id (scored like index entries).
struct TermSource {
    index: String,
    named: Vec<(f64, String)>,
}

impl TermSource {
    fn names(&self, case: &str) -> bool {
        self.named.iter().any(|(_, id)| id == case)
    }
}

/// Whether a query term has the form of a case id (`20261122-7kq2px`, as
/// [`super::conversations::new_case_id`] makes them, lowercased by the query).
fn is_case_id(term: &str) -> bool {
    let Some((day, suffix)) = term.split_once('-') else {
        return false;
    };
    day.len() == 8
        && day.bytes().all(|b| b.is_ascii_digit())
        && suffix.len() == 6
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The latest time anything happened on a case that search orders by.
fn last_activity_ms(c: &Conversation) -> i64 {
    [c.last_customer_ms, c.last_agent_reply_ms]
        .into_iter()
        .flatten()
        .fold(c.opened_ms, i64::max)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::channels::ContactRef;
    use crate::clock::ManualClock;
    use crate::conversation::Transition;
    use crate::store::embedded::EmbeddedBackend;

    fn customer(number: &str) -> ContactRef {
        ContactRef {
            external_id: number.into(),
            name: Some("Budi".into()),
            wa_id: Some(number.into()),
            user_id: None,
        }
    }

    async fn found(store: &Store, q: &str) -> Vec<String> {
        store
            .search(&query_terms(q), None, 50, 1_000)
            .await
            .unwrap()
            .ids
    }

    #[tokio::test]
    async fn ids_are_looked_up_words_are_indexed_and_each_case_comes_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
        let store = Store::new(
            Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
            clock.clone(),
        );
        let number = "6281300000001";
        let (_, first, _) = store
            .open_case(Channel::WhatsApp, &customer(number), |_| {})
            .await
            .unwrap();
        store
            .index_for_search(&first.id, &["kardus rusak"], &["Budi"], store.now_ms())
            .await
            .unwrap();
        let resolve = Transition::Resolve { by: "test".into() };
        store
            .transition(&first.id, &resolve, |_| true)
            .await
            .unwrap();
        clock.advance(std::time::Duration::from_secs(60));
        let (_, second, _) = store
            .open_case(Channel::WhatsApp, &customer(number), |_| {})
            .await
            .unwrap();
        // The customer types their own number: indexed as a word, still one
        // result per case.
        store
            .index_for_search(
                &second.id,
                &["nomor saya 0813-0000-0001"],
                &["Budi"],
                store.now_ms(),
            )
            .await
            .unwrap();

        assert_eq!(
            found(&store, "081300000001").await,
            [second.id.clone(), first.id.clone()],
            "most recent first"
        );
        assert_eq!(
            found(&store, &first.id).await,
            std::slice::from_ref(&first.id),
            "by case id"
        );
        assert_eq!(
            found(&store, &format!("{number} kardus")).await,
            std::slice::from_ref(&first.id),
            "id and word"
        );
        assert_eq!(found(&store, "budi").await.len(), 2);
        assert!(found(&store, "6281399999999").await.is_empty());
        assert!(found(&store, "20991231-ZZZZZZ").await.is_empty());
    }

    #[tokio::test]
    async fn a_name_is_indexed_once_per_case_and_words_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
            Arc::new(ManualClock::at_ms(1_800_000_000_000)),
        );
        let score = |term: &str| {
            let store = store.clone();
            let index = term_key(term);
            async move { store.backend.index_score(&index, "c1").await.unwrap() }
        };
        store
            .index_for_search("c1", &["kardus"], &["Budi"], 1_000)
            .await
            .unwrap();
        store
            .index_for_search("c1", &["kardus"], &["Budi"], 2_000)
            .await
            .unwrap();
        assert_eq!(
            score("budi").await,
            Some(-1_000.0),
            "the name keeps its first time"
        );
        assert_eq!(
            score("kardus").await,
            Some(-2_000.0),
            "a word comes first again"
        );
        store
            .index_for_search("c1", &[], &["Budi Santoso"], 3_000)
            .await
            .unwrap();
        assert_eq!(
            score("santoso").await,
            Some(-3_000.0),
            "a new name is added"
        );
        assert_eq!(score("budi").await, Some(-1_000.0));
    }

    #[test]
    fn terms_of_messages_names_and_numbers() {
        assert_eq!(
            terms("Pesanan INV-1001 belum sampai, resi JNE123456789!"),
            [
                "pesanan",
                "inv-1001",
                "inv",
                "1001",
                "inv1001",
                "sampai",
                "resi",
                "jne123456789"
            ]
        );
        assert_eq!(terms("6281234567890"), ["6281234567890"]);
        assert_eq!(terms("081234567890"), ["6281234567890"]);
        assert_eq!(terms("0812-3456-7890"), ["6281234567890", "0812-3456-7890"]);
        assert_eq!(
            terms("Halo kak, saya mau tanya pesanan yang belum sampai ya"),
            ["tanya", "pesanan", "sampai"],
            "words too common to find anything by are left out"
        );
        assert_eq!(terms("Budi Santoso"), ["budi", "santoso"]);
        assert_eq!(terms("20261122-7KQ2PX")[0], "20261122-7kq2px");
        assert!(terms("a b c").is_empty(), "single letters are not terms");
        assert_eq!(terms(&"kata ".repeat(500)), ["kata"]);
    }

    #[test]
    fn queries_keep_numbers_whole() {
        assert_eq!(query_terms("INV-1001"), ["inv-1001"]);
        assert_eq!(query_terms("+62 812-3456-7890"), ["6281234567890"]);
        assert_eq!(query_terms("0812 3456 7890"), ["6281234567890"]);
        assert_eq!(query_terms("budi 081234567890"), ["budi", "6281234567890"]);
        assert_eq!(query_terms("pesanan saya"), ["pesanan"]);
        assert!(query_terms("halo kak").is_empty());
        assert_eq!(query_terms("  Budi   SANTOSO "), ["budi", "santoso"]);
        assert!(query_terms("?").is_empty());
    }

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn cursors_round_trip() {
        let c = SearchCursor {
            score: -1_795_402_800_000.0,
            member: "20261123-ABC234".into(),
        };
        assert_eq!(SearchCursor::decode(&c.encode()), Some(c));
        assert_eq!(SearchCursor::decode("nope"), None);
    }
}
