//! Who a broadcast goes to: an explicit list, a CSV upload, or a segment of the
//! contacts and cases Balas has seen.
//!
//! Bad rows are reported with their line numbers, never silently dropped; the
//! frozen audience is deduplicated by recipient. Lists and CSV files are read
//! one recipient at a time ([`for_each_json_recipient`], [`for_each_csv_row`])
//! and checked one at a time ([`Validator`]), so a 100,000-recipient audience
//! is never held as a whole: only the ids seen (for deduplication) are.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::ControlFlow;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::channels::Channel;

/// One recipient with their template variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// WhatsApp number (digits, `+` allowed) or Instagram IGSID.
    pub to: String,
    /// Values for `{{name}}`-style placeholders.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// A segment of stored contacts and cases. Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Only cases resolved at or after this (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub resolved_from: Option<String>,
    /// Only cases resolved at or before this.
    #[serde(default)]
    pub resolved_to: Option<String>,
    /// CSAT of such a case at most this.
    #[serde(default)]
    pub csat_max: Option<u8>,
    /// CSAT of such a case at least this.
    #[serde(default)]
    pub csat_min: Option<u8>,
    /// The case went through this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// The contact has this label.
    #[serde(default)]
    pub label: Option<String>,
    /// The contact wrote within this many days.
    #[serde(default)]
    pub last_inbound_within_days: Option<u32>,
}

/// The audience as given in a request, without its recipients: they are read
/// one at a time by [`for_each_json_recipient`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    /// How many explicit recipients the list has (their contents are skipped).
    #[serde(default)]
    pub recipients: Listed,
    /// A segment of stored contacts (of the broadcast's channel).
    #[serde(default)]
    pub segment: Option<Segment>,
}

/// A JSON list read only to count its items (which are skipped, not stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listed(pub u64);

impl<'de> Deserialize<'de> for Listed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = Listed;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Listed(n))
            }
        }
        d.deserialize_seq(Count)
    }
}

/// A problem with one input row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line (CSV) or position (list).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Normalizes a recipient id for `channel`; an error says what is wrong.
pub fn normalize_to(channel: Channel, raw: &str) -> Result<String, String> {
    let t = raw.trim();
    match channel {
        Channel::WhatsApp => {
            let digits: String = t
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                .collect();
            let digits = digits.strip_prefix('+').unwrap_or(&digits);
            if !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "{raw:?} is not a phone number (digits with country code, e.g. 6281234567890)"
                ));
            }
            // Local Indonesian form 08… becomes 628….
            let digits = match digits.strip_prefix('0') {
                Some(rest) => format!("62{rest}"),
                None => digits.to_string(),
            };
            if !(8..=15).contains(&digits.len()) {
                return Err(format!(
                    "{raw:?} has {} digits; a number with country code has 8–15",
                    digits.len()
                ));
            }
            Ok(digits)
        }
        Channel::Instagram => {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "{raw:?} is not an Instagram-scoped user id (digits)"
                ));
            }
            Ok(t.to_string())
        }
    }
}

/// Placeholders (`{{name}}`) used in a text, in order of first use.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// Fills placeholders from a recipient's variables.
pub fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}",), v);
        out = out.replace(&format!("{{{{ {k} }}}}"), v);
    }
    out
}

/// Checks recipients one at a time: normalizes the id, requires every
/// placeholder value, drops repeats of an id seen before. Keeps the first
/// errors (up to its limit) and counts all of them.
#[derive(Debug)]
pub struct Validator<'a> {
    channel: Channel,
    required: &'a [String],
    seen: HashSet<String>,
    errors: Vec<RowError>,
    keep_errors: usize,
    bad: usize,
    duplicates: usize,
}

impl<'a> Validator<'a> {
    /// A validator for `channel` whose recipients must have values for
    /// `required`; it keeps at most `keep_errors` errors.
    pub fn new(channel: Channel, required: &'a [String], keep_errors: usize) -> Self {
        Self {
            channel,
            required,
            seen: HashSet::new(),
            errors: Vec::new(),
            keep_errors,
            bad: 0,
            duplicates: 0,
        }
    }

    /// The normalized recipient when row `line` is good and new; `None` when it
    /// is bad (an error is noted) or a duplicate (counted).
    pub fn check(&mut self, line: usize, row: Result<Recipient, String>) -> Option<Recipient> {
        let checked = row.and_then(|mut r| {
            r.to = normalize_to(self.channel, &r.to)?;
            let missing: Vec<String> = self
                .required
                .iter()
                .filter(|v| r.variables.get(*v).is_none_or(|x| x.trim().is_empty()))
                .map(|m| format!("{{{{{m}}}}}"))
                .collect();
            if missing.is_empty() {
                Ok(r)
            } else {
                Err(format!("missing value for {}", missing.join(", ")))
            }
        });
        match checked {
            Err(message) => {
                self.bad += 1;
                if self.errors.len() < self.keep_errors {
                    self.errors.push(RowError { line, message });
                }
                None
            }
            Ok(r) if self.seen.contains(&r.to) => {
                self.duplicates += 1;
                None
            }
            Ok(r) => {
                self.seen.insert(r.to.clone());
                Some(r)
            }
        }
    }

    /// How many rows were bad (all of them, not only the errors kept).
    pub fn bad(&self) -> usize {
        self.bad
    }

    /// How many rows repeated an id seen before.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// The errors kept, in input order.
    pub fn into_errors(self) -> Vec<RowError> {
        self.errors
    }
}

/// Checks, normalizes and deduplicates `(line, recipient)` rows; `required`
/// are the placeholder names every recipient must have. Returns the good ones,
/// an error per bad one, and how many duplicates were dropped.
pub fn validate(
    channel: Channel,
    rows: Vec<(usize, Recipient)>,
    required: &[String],
) -> (Vec<Recipient>, Vec<RowError>, usize) {
    let mut v = Validator::new(channel, required, usize::MAX);
    let good = rows
        .into_iter()
        .filter_map(|(line, r)| v.check(line, Ok(r)))
        .collect();
    let duplicates = v.duplicates();
    (good, v.into_errors(), duplicates)
}

/// The field separator of a CSV file: `;` (what spreadsheets save on
/// Indonesian-locale machines, where `,` is the decimal mark), tab, or `,`,
/// whichever the header row has most of outside quotes.
pub fn detect_delimiter(data: &[u8]) -> u8 {
    let header = data
        .split(|b| *b == b'\n')
        .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or_default();
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in header {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    match counts {
        [c, s, t] if s > c && s >= t => b';',
        [c, _, t] if t > c => b'\t',
        _ => b',',
    }
}

/// The 1-based line of the file a record starting at byte `offset` is on.
/// (With `\r\n` line ends the reader's offsets and line count point at the
/// `\n` before the record, so line breaks there are skipped.)
fn line_at(data: &[u8], offset: u64) -> usize {
    let mut end = (offset as usize).min(data.len());
    while end < data.len() && matches!(data[end], b'\r' | b'\n') {
        end += 1;
    }
    data[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// Reads a CSV audience row by row: a header row with the recipient column
/// (`to`, `phone`, `nomor`, `wa_id`, `igsid` or `recipient`) and one column per
/// variable. `each` gets the file line of every row and the recipient, or what
/// is wrong with the row; it may stop the reading. Fails only when there is no
/// usable header row.
pub fn for_each_csv_row(
    data: &[u8],
    mut each: impl FnMut(usize, Result<Recipient, String>) -> ControlFlow<()>,
) -> Result<(), RowError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .delimiter(detect_delimiter(data))
        .from_reader(data);
    let headers = reader.headers().map_err(|e| RowError {
        line: 1,
        message: format!("cannot read the header row: {e}"),
    })?;
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let to_col = names
        .iter()
        .position(|h| {
            matches!(
                h.as_str(),
                "to" | "phone" | "nomor" | "wa_id" | "igsid" | "recipient"
            )
        })
        .ok_or_else(|| RowError {
            line: 1,
            message: "no recipient column; name one column `to` (or phone, nomor, wa_id, igsid)"
                .into(),
        })?;
    let mut record = csv::StringRecord::new();
    loop {
        let row = match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| line_at(data, p.byte()));
                let mut variables = BTreeMap::new();
                for (i, value) in record.iter().enumerate() {
                    if i != to_col && !value.is_empty() {
                        variables.insert(names[i].clone(), value.to_string());
                    }
                }
                let to = record.get(to_col).unwrap_or("").to_string();
                (line, Ok(Recipient { to, variables }))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(data, p.byte()));
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        "is not UTF-8 text; save the file as \"CSV UTF-8\"".to_string()
                    }
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("has {len} field(s) where the header has {expected_len}"),
                    _ => e.to_string(),
                };
                (line, Err(message))
            }
        };
        if each(row.0, row.1).is_break() {
            return Ok(());
        }
    }
}

/// Parses a whole CSV audience (see [`for_each_csv_row`]). Line numbers in
/// errors are the file's lines.
pub fn parse_csv(data: &[u8]) -> Result<Vec<(usize, Recipient)>, Vec<RowError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for_each_csv_row(data, |line, row| {
        match row {
            Ok(r) => rows.push((line, r)),
            Err(message) => errors.push(RowError { line, message }),
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| vec![e])?;
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Reads `audience.recipients` of a JSON broadcast request one recipient at a
/// time, skipping every other field: `each` gets the 1-based position and the
/// recipient, and may stop the reading. The request's other fields are read
/// by deserializing it (with [`AudienceSpec`], which only counts the list).
/// An error names the position of a recipient that is not an object with a
/// string `to` (and string `variables`).
pub fn for_each_json_recipient(
    body: &[u8],
    each: impl FnMut(usize, Recipient) -> ControlFlow<()>,
) -> Result<(), String> {
    let mut sink = Sink {
        each,
        read: 0,
        in_list: false,
        stopped: false,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = Seed {
        fields: Fields::Request,
        sink: &mut sink,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(_) if sink.stopped => Ok(()),
        Err(e) if sink.in_list => Err(format!(
            "recipient {} (audience.recipients[{}]) is not valid: {e}",
            sink.read + 1,
            sink.read
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The caller's callback and where the reading is.
struct Sink<F> {
    each: F,
    /// Recipients read so far.
    read: usize,
    /// Inside `audience.recipients` (so an error is about recipient `read + 1`).
    in_list: bool,
    /// The callback asked to stop.
    stopped: bool,
}

/// Where in the request the streaming reader is.
#[derive(Clone, Copy)]
enum Fields {
    /// The top-level object: look for `audience`.
    Request,
    /// `audience`: look for `recipients`.
    Audience,
}

struct Seed<'s, F> {
    fields: Fields,
    sink: &'s mut Sink<F>,
}

impl<'de, F: FnMut(usize, Recipient) -> ControlFlow<()>> DeserializeSeed<'de> for Seed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, Recipient) -> ControlFlow<()>> Visitor<'de> for Seed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wanted = match self.fields {
            Fields::Request => "audience",
            Fields::Audience => "recipients",
        };
        while let Some(key) = map.next_key::<String>()? {
            if key != wanted {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match self.fields {
                Fields::Request => map.next_value_seed(Seed {
                    fields: Fields::Audience,
                    sink: &mut *self.sink,
                })?,
                Fields::Audience => map.next_value_seed(List(&mut *self.sink))?,
            }
        }
        Ok(())
    }
}

/// `audience.recipients`: each item to the caller as it is read.
struct List<'s, F>(&'s mut Sink<F>);

impl<'de, F: FnMut(usize, Recipient) -> ControlFlow<()>> DeserializeSeed<'de> for List<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, Recipient) -> ControlFlow<()>> Visitor<'de> for List<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of recipients")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let sink = self.0;
        sink.in_list = true;
        while let Some(recipient) = seq.next_element::<Recipient>()? {
            sink.read += 1;
            if (sink.each)(sink.read, recipient).is_break() {
                sink.stopped = true;
                return Err(de::Error::custom("stopped by the caller"));
            }
        }
        sink.in_list = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        let ok = [
            ("6281234567890", "6281234567890"),
            ("+62 812-3456-7890", "6281234567890"),
            ("081234567890", "6281234567890"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_to(Channel::WhatsApp, raw).unwrap(), want, "{raw}");
        }
        for bad in ["", "abc", "12345", "62812345678901234", "62812x"] {
            assert!(normalize_to(Channel::WhatsApp, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_rows_keep_file_line_numbers() {
        let csv = b"to,name\n6281111111111,Rina\n0812-2222-2222,Budi\nnot-a-number,X\n6283333333333,\n6281111111111,Rina again\n";
        let rows = parse_csv(csv).unwrap();
        let lines: Vec<usize> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        let (good, errors, dups) = validate(Channel::WhatsApp, rows, &["name".into()]);
        assert_eq!(good.len(), 2);
        assert_eq!(dups, 1);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [4, 5]);
        assert!(
            errors[1].message.contains("{{name}}"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn semicolons_tabs_and_byte_order_marks() {
        let excel =
            "\u{feff}nomor;nama;kode\r\n081234567890;Budi;\"A;1\"\r\n6281111111111;Rina;B2\r\n";
        let rows = parse_csv(excel.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1.to, "081234567890");
        assert_eq!(rows[0].1.variables["nama"], "Budi");
        assert_eq!(
            rows[0].1.variables["kode"], "A;1",
            "a quoted separator is text"
        );
        let tabs = parse_csv(b"to\tname\n6281111111111\tRina\n").unwrap();
        assert_eq!(tabs[0].1.variables["name"], "Rina");
        let comma = parse_csv(b"to,note\n6281111111111,\"a;b;c\"\n").unwrap();
        assert_eq!(comma[0].1.variables["note"], "a;b;c");
        assert_eq!(detect_delimiter(b"\n\nto;name\n"), b';');
    }

    #[test]
    fn rows_with_the_wrong_shape_or_encoding_name_their_line() {
        let err = parse_csv(b"to;name\n6281111111111;Rina\n6282222222222\n").unwrap_err();
        assert_eq!(err[0].line, 3);
        assert!(err[0].message.contains("1 field"), "{}", err[0].message);
        let latin1 = b"to;name\n6281111111111;Jos\xe9\n";
        let err = parse_csv(latin1).unwrap_err();
        assert_eq!(err[0].line, 2);
        assert!(err[0].message.contains("UTF-8"), "{}", err[0].message);
    }

    #[test]
    fn json_recipients_are_read_one_by_one_wherever_the_list_is() {
        // The list comes first, other fields (even ones named like ours) are skipped.
        let body = br#"{"audience": {"segment": null, "recipients": [
                {"to": "6281111111111", "variables": {"name": "Rina"}},
                {"to": "0812-2222-2222"}
            ]}, "name": "x", "message": {"text": "hi", "recipients": [1]},
            "channel": "whatsapp"}"#;
        let mut seen = Vec::new();
        for_each_json_recipient(body, |pos, r| {
            seen.push((pos, r.to));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [(1, "6281111111111".into()), (2, "0812-2222-2222".into())]
        );

        let head: AudienceSpec =
            serde_json::from_slice(br#"{"recipients": [{"to": "1"}, 2, "x"]}"#).unwrap();
        assert_eq!(head.recipients, Listed(3), "counted, not read");

        let mut n = 0;
        for_each_json_recipient(
            br#"{"audience": {"recipients": [{"to": "1"}, {"to": "2"}]}}"#,
            |_, _| {
                n += 1;
                ControlFlow::Break(())
            },
        )
        .unwrap();
        assert_eq!(n, 1, "stops when asked");
    }

    #[test]
    fn a_json_recipient_of_the_wrong_shape_is_named_by_position() {
        let body = br#"{"audience": {"recipients": [{"to": "1"}, {"to": "2"}, {"phone": "3"}]}}"#;
        let err = for_each_json_recipient(body, |_, _| ControlFlow::Continue(())).unwrap_err();
        assert!(
            err.starts_with("recipient 3 (audience.recipients[2])") && err.contains("`to`"),
            "{err}"
        );
        let err = for_each_json_recipient(b"{\"audience\": ", |_, _| ControlFlow::Continue(()))
            .unwrap_err();
        assert!(err.contains("EOF"), "{err}");
    }

    #[test]
    fn the_validator_keeps_the_first_errors_and_counts_all() {
        let required = ["name".to_string()];
        let mut v = Validator::new(Channel::WhatsApp, &required, 2);
        let row = |to: &str| {
            Ok(Recipient {
                to: to.into(),
                variables: BTreeMap::from([("name".into(), "N".into())]),
            })
        };
        assert!(v.check(1, row("x")).is_none());
        assert_eq!(v.check(2, row("081234567890")).unwrap().to, "6281234567890");
        assert!(v.check(3, row("6281234567890")).is_none(), "duplicate");
        assert!(v.check(4, Err("broken row".into())).is_none());
        assert!(v.check(5, row("y")).is_none());
        assert_eq!((v.bad(), v.duplicates()), (3, 1));
        let lines: Vec<usize> = v.into_errors().iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 4]);
    }

    #[test]
    fn csv_without_recipient_column() {
        let err = parse_csv(b"nama,kota\nRina,Bandung\n").unwrap_err();
        assert_eq!(err[0].line, 1);
        assert!(err[0].message.contains("`to`"));
    }

    #[test]
    fn placeholders_and_fill() {
        assert_eq!(
            placeholders("Hai {{name}}, kode {{ code }} {{name}}"),
            ["name", "code"]
        );
        let vars = BTreeMap::from([("name".to_string(), "Rina".to_string())]);
        assert_eq!(fill("Hai {{name}}!", &vars), "Hai Rina!");
    }
}
