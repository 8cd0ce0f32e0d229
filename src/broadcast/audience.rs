//! Who a broadcast goes to: an explicit list, a CSV upload, or a segment of the
//! contacts and cases Balas has seen.
//!
//! Bad rows are reported with their line numbers, never silently dropped; the
//! frozen audience is deduplicated by recipient.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

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

/// The audience as given in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    /// Explicit recipients.
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    /// A segment of stored contacts (of the broadcast's channel).
    #[serde(default)]
    pub segment: Option<Segment>,
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

/// Checks, normalizes and deduplicates `(line, recipient)` rows; `required`
/// are the placeholder names every recipient must have. Returns the good ones,
/// an error per bad one, and how many duplicates were dropped.
pub fn validate(
    channel: Channel,
    rows: Vec<(usize, Recipient)>,
    required: &[String],
) -> (Vec<Recipient>, Vec<RowError>, usize) {
    let mut seen = HashSet::new();
    let mut good = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut duplicates = 0;
    for (line, mut r) in rows {
        match normalize_to(channel, &r.to) {
            Err(message) => errors.push(RowError { line, message }),
            Ok(to) => {
                let missing: Vec<&String> = required
                    .iter()
                    .filter(|v| r.variables.get(*v).is_none_or(|x| x.trim().is_empty()))
                    .collect();
                if !missing.is_empty() {
                    errors.push(RowError {
                        line,
                        message: format!(
                            "missing value for {}",
                            missing
                                .iter()
                                .map(|m| format!("{{{{{m}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                    continue;
                }
                if seen.insert(to.clone()) {
                    r.to = to;
                    good.push(r);
                } else {
                    duplicates += 1;
                }
            }
        }
    }
    (good, errors, duplicates)
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

/// Parses a CSV audience: a header row with the recipient column (`to`,
/// `phone`, `nomor`, `wa_id`, `igsid` or `recipient`) and one column per
/// variable, separated by `,`, `;` or tab (detected), in UTF-8 with or
/// without a byte-order mark. Line numbers in errors are the file's lines.
pub fn parse_csv(data: &[u8]) -> Result<Vec<(usize, Recipient)>, Vec<RowError>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .delimiter(detect_delimiter(data))
        .from_reader(data);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![RowError {
                line: 1,
                message: format!("cannot read the header row: {e}"),
            }]);
        }
    };
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    let Some(to_col) = names.iter().position(|h| {
        matches!(
            h.as_str(),
            "to" | "phone" | "nomor" | "wa_id" | "igsid" | "recipient"
        )
    }) else {
        return Err(vec![RowError {
            line: 1,
            message: "no recipient column; name one column `to` (or phone, nomor, wa_id, igsid)"
                .into(),
        }]);
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        match record {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| line_at(data, p.byte()));
                let mut variables = BTreeMap::new();
                for (i, value) in rec.iter().enumerate() {
                    if i != to_col && !value.is_empty() {
                        variables.insert(names[i].clone(), value.to_string());
                    }
                }
                rows.push((
                    line,
                    Recipient {
                        to: rec.get(to_col).unwrap_or("").to_string(),
                        variables,
                    },
                ));
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
                errors.push(RowError { line, message });
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
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
