//! Numbers customers send: order numbers, courier tracking numbers, service
//! tickets and phone numbers.
//!
//! Pure functions over the message as written (not the normalized text, which
//! drops the `/` of `INV/20240115/MPL/3712345678`). Each number is found once,
//! by the most specific pattern first: a number with a courier's own prefix
//! (`SPXID…`, `JP…`, a JNE origin code) before one recognised only from the
//! words around it (`resi 1234…`, `no pesanan …`), and phone numbers last.
//! Values are canonical (uppercase, phone numbers as `+62…`) so an agent can
//! search for them; spans point into the original text.
//!
//! Formats recognised (case-insensitive):
//!
//! | kind | examples |
//! |---|---|
//! | order number | `INV/20240115/MPL/3712345678`, `INV-2024-000123`, Shopee `240115ABCD1234`, `no pesanan 12345678`, `order #A1234567` |
//! | tracking: SPX | `SPXID012345678901` |
//! | tracking: J&T | `JP1234567890`, `JX1234567890`, `JD0123456789` |
//! | tracking: JNE | `CGK2A10398766201`, `BDOAM00134812214`; 16 digits after `jne` |
//! | tracking: SiCepat | `000123456789` (12 digits from `00`); any after `sicepat` |
//! | tracking: AnterAja | 11–15 digits after `anteraja` |
//! | tracking (courier unknown) | 8–20 characters with 6+ digits after `resi`, `awb`, `tracking` |
//! | service ticket | `SRV-2024-00123`, `TKT-88123`, `RMA 551234`, `tiket 12345` |
//! | phone | `0812-3456-7890`, `+62 812 3456 7890`, `6281234567890`, `(021) 555-1234` |

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// What a found number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// An order / invoice number.
    OrderNumber,
    /// A courier's tracking number (resi, AWB).
    TrackingNumber,
    /// A service or repair ticket.
    ServiceTicket,
    /// A phone number.
    PhoneNumber,
}

impl EntityKind {
    /// The name used in templates and the API (`order_number`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::OrderNumber => "order_number",
            EntityKind::TrackingNumber => "tracking_number",
            EntityKind::ServiceTicket => "service_ticket",
            EntityKind::PhoneNumber => "phone_number",
        }
    }
}

/// A courier whose tracking numbers are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Courier {
    /// JNE.
    #[serde(rename = "JNE")]
    Jne,
    /// J&T Express.
    #[serde(rename = "J&T")]
    Jnt,
    /// SiCepat.
    #[serde(rename = "SiCepat")]
    SiCepat,
    /// Shopee Express.
    #[serde(rename = "SPX")]
    Spx,
    /// AnterAja.
    #[serde(rename = "AnterAja")]
    AnterAja,
}

impl Courier {
    /// The courier's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Courier::Jne => "JNE",
            Courier::Jnt => "J&T",
            Courier::SiCepat => "SiCepat",
            Courier::Spx => "SPX",
            Courier::AnterAja => "AnterAja",
        }
    }
}

/// A number found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entity {
    /// What it is.
    pub kind: EntityKind,
    /// Canonical form: uppercase without spaces; phone numbers `+62…`.
    pub value: String,
    /// The courier, for tracking numbers when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier: Option<Courier>,
    /// Byte range in the original message.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// One recogniser: a regex (group 1 is the number when present) and what a
/// match means.
struct Recogniser {
    re: Regex,
    kind: EntityKind,
    courier: Option<Courier>,
    /// Extra check on the canonical value.
    accept: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

fn digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Shopee order numbers start with the order date, `YYMMDD`.
fn dated(s: &str) -> bool {
    let d = |r: Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok()).unwrap_or(0);
    s.bytes().any(|b| b.is_ascii_alphabetic())
        && (1..=12).contains(&d(2..4))
        && (1..=31).contains(&d(4..6))
}

fn six_digits(s: &str) -> bool {
    digits(s) >= 6
}

fn four_digits(s: &str) -> bool {
    digits(s) >= 4
}

/// A phone number is 9 to 13 digits after the country code or leading 0.
fn phone_length(s: &str) -> bool {
    (10..=15).contains(&digits(s))
}

fn re(p: &str) -> Regex {
    regex::RegexBuilder::new(p)
        .case_insensitive(true)
        .build()
        .unwrap_or_else(|e| panic!("entity pattern {p}: {e}"))
}

/// Most specific first; a later match overlapping an earlier one is skipped.
static RECOGNISERS: LazyLock<Vec<Recogniser>> = LazyLock::new(|| {
    use Courier::*;
    use EntityKind::*;
    let r = |p: &str, kind, courier, accept: fn(&str) -> bool| Recogniser {
        re: re(p),
        kind,
        courier,
        accept,
    };
    // Words that announce a number of some kind; the number follows within a
    // few words (`no resi JNE nya: CGK…`).
    let after = |words: &str, number: &str| {
        format!(r"(?:{words})\W{{1,3}}(?:[a-z&]{{1,10}}\W{{1,3}}){{0,3}}?[:#]?\s*({number})\b")
    };
    // A number-like token: up to six letters, then a digit, then more.
    let token = r"[a-z]{0,6}\d[a-z0-9/\-]{2,30}[a-z0-9]";
    let order_token = r"#?[a-z]{0,5}\d[a-z0-9/\-]{2,30}[a-z0-9]";
    vec![
        // Prefixed formats.
        r(
            r"\b(inv[/\-_]?\d{6,8}[/\-_][a-z]{2,8}[/\-_][a-z0-9]{4,20})\b",
            OrderNumber,
            None,
            any,
        ),
        r(
            r"\b(inv[/\-_ ]?[a-z0-9]+(?:[/\-_][a-z0-9]+)*)\b",
            OrderNumber,
            None,
            four_digits,
        ),
        r(r"\b(spxid\d{9,15}[a-z]?)\b", TrackingNumber, Some(Spx), any),
        r(r"\b(j[pxdob]\d{10,12})\b", TrackingNumber, Some(Jnt), any),
        r(
            r"\b([a-z]{3}[a-z0-9]{2}\d{8,11})\b",
            TrackingNumber,
            Some(Jne),
            any,
        ),
        r(
            r"\b((?:srv|svc|tkt|rma)[-/# ]?\d{2,4}[-/]?\d{2,10})\b",
            ServiceTicket,
            None,
            four_digits,
        ),
        r(r"\b(00\d{10})\b", TrackingNumber, Some(SiCepat), any),
        // Announced by the words before them.
        r(
            &after(r"\bjne\b", r"\d{12,16}"),
            TrackingNumber,
            Some(Jne),
            any,
        ),
        r(
            &after(r"\bsicepat\b|\bsi cepat\b", r"\d{10,14}"),
            TrackingNumber,
            Some(SiCepat),
            any,
        ),
        r(
            &after(r"\banter ?aja\b", r"\d{10,15}"),
            TrackingNumber,
            Some(AnterAja),
            any,
        ),
        r(
            &after(r"\bj ?& ?t\b|\bjnt\b", r"\d{10,14}"),
            TrackingNumber,
            Some(Jnt),
            any,
        ),
        r(
            &after(r"\bresi\b|\bawb\b|\btracking\b|\bno\.? lacak\b", token),
            TrackingNumber,
            None,
            six_digits,
        ),
        r(
            &after(
                r"\btiket\b|\bticket\b|\bno\.? servis\b|\bnomor servis\b|\btanda terima\b",
                token,
            ),
            ServiceTicket,
            None,
            four_digits,
        ),
        r(
            &after(
                r"\bpesanan\b|\border\b|\binvoice\b|\btransaksi\b",
                order_token,
            ),
            OrderNumber,
            None,
            |s| digits(s) >= 5,
        ),
        // Phone numbers: mobile (08…, +628…) and landlines with an area code.
        r(
            r"(?:^|[^\w+])((?:\+62|62|0)[\s.\-]?8\d{1,2}(?:[\s.\-]?\d{2,4}){2,4})\b",
            PhoneNumber,
            None,
            phone_length,
        ),
        r(
            r"(?:^|[^\w+])(\(?(?:\+62|0)[\s.\-]?[2-7]\d{1,2}\)?[\s.\-]?\d{3,4}[\s.\-]?\d{3,5})\b",
            PhoneNumber,
            None,
            phone_length,
        ),
        // Bare numbers whose shape is distinctive enough on their own.
        r(r"\b(\d{6}[a-z0-9]{8})\b", OrderNumber, None, dated),
    ]
});

/// Every order number, tracking number, service ticket and phone number in
/// `text`, in order of appearance.
pub fn extract(text: &str) -> Vec<Entity> {
    let mut found: Vec<Entity> = Vec::new();
    // Every format has at least four digits: most messages stop here.
    if text.bytes().filter(u8::is_ascii_digit).count() < 4 {
        return found;
    }
    for r in RECOGNISERS.iter() {
        for caps in r.re.captures_iter(text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            let span = m.range();
            if found
                .iter()
                .any(|e| e.span.start < span.end && span.start < e.span.end)
            {
                continue;
            }
            let value = canonical(r.kind, m.as_str());
            if value.is_empty() || !(r.accept)(&value) {
                continue;
            }
            found.push(Entity {
                kind: r.kind,
                value,
                courier: r.courier,
                span,
            });
        }
    }
    found.sort_by_key(|e| e.span.start);
    found
}

/// The first entity of `kind`.
pub fn first(entities: &[Entity], kind: EntityKind) -> Option<&Entity> {
    entities.iter().find(|e| e.kind == kind)
}

/// The reply-template variables the entities fill (the first of each kind):
/// `case.order_id`, `case.tracking_number`, `case.courier`, `case.ticket_id`,
/// `case.phone`. The engine keeps them on the case, so a later message can use
/// a number given earlier.
pub fn template_values(entities: &[Entity]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (kind, var) in [
        (EntityKind::OrderNumber, "case.order_id"),
        (EntityKind::TrackingNumber, "case.tracking_number"),
        (EntityKind::ServiceTicket, "case.ticket_id"),
        (EntityKind::PhoneNumber, "case.phone"),
    ] {
        if let Some(e) = first(entities, kind) {
            out.push((var, e.value.clone()));
            if let Some(c) = e.courier {
                out.push(("case.courier", c.name().to_string()));
            }
        }
    }
    out
}

/// Canonical spelling: uppercase, no spaces; phone numbers `+62` and digits.
fn canonical(kind: EntityKind, raw: &str) -> String {
    match kind {
        EntityKind::PhoneNumber => {
            let d: String = raw.chars().filter(char::is_ascii_digit).collect();
            let national = if let Some(rest) = d.strip_prefix("62") {
                rest
            } else if let Some(rest) = d.strip_prefix('0') {
                rest
            } else {
                return String::new();
            };
            format!("+62{national}")
        }
        _ => raw
            .trim_start_matches('#')
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::EntityKind::*;
    use super::*;

    type Want<'a> = &'a [(EntityKind, &'a str, Option<Courier>)];

    #[test]
    fn extraction_table() {
        use Courier::*;
        let cases: &[(&str, Want)] = &[
            (
                "min pesanan INV/20240115/MPL/3712345678 blm sampe",
                &[(OrderNumber, "INV/20240115/MPL/3712345678", None)],
            ),
            (
                "inv/20240115/mpl/3712345678",
                &[(OrderNumber, "INV/20240115/MPL/3712345678", None)],
            ),
            (
                "invoice INV-2024-000123 ya",
                &[(OrderNumber, "INV-2024-000123", None)],
            ),
            (
                "order 240115ABCD1234 kok belum dikirim",
                &[(OrderNumber, "240115ABCD1234", None)],
            ),
            ("no pesanan: 12345678", &[(OrderNumber, "12345678", None)]),
            (
                "order #A1234567 gmn kak",
                &[(OrderNumber, "A1234567", None)],
            ),
            (
                "resi SPXID012345678901",
                &[(TrackingNumber, "SPXID012345678901", Some(Spx))],
            ),
            (
                "jp1234567890 kok gk gerak",
                &[(TrackingNumber, "JP1234567890", Some(Jnt))],
            ),
            (
                "JX1234567890",
                &[(TrackingNumber, "JX1234567890", Some(Jnt))],
            ),
            (
                "resi JNE CGK2A10398766201",
                &[(TrackingNumber, "CGK2A10398766201", Some(Jne))],
            ),
            (
                "BDOAM00134812214",
                &[(TrackingNumber, "BDOAM00134812214", Some(Jne))],
            ),
            (
                "jne 0113391900025323",
                &[(TrackingNumber, "0113391900025323", Some(Jne))],
            ),
            (
                "no resi 000482917384",
                &[(TrackingNumber, "000482917384", Some(SiCepat))],
            ),
            (
                "sicepat resinya 004812345678",
                &[(TrackingNumber, "004812345678", Some(SiCepat))],
            ),
            (
                "anteraja: 10000123456789",
                &[(TrackingNumber, "10000123456789", Some(AnterAja))],
            ),
            (
                "resi nya 7788123456",
                &[(TrackingNumber, "7788123456", None)],
            ),
            (
                "tiket servis SRV-2024-00123",
                &[(ServiceTicket, "SRV-2024-00123", None)],
            ),
            (
                "TKT-88123 gimana kabarnya",
                &[(ServiceTicket, "TKT-88123", None)],
            ),
            ("no tiket 55123", &[(ServiceTicket, "55123", None)]),
            (
                "hubungi sy di 0812-3456-7890",
                &[(PhoneNumber, "+6281234567890", None)],
            ),
            (
                "+62 812 3456 7890",
                &[(PhoneNumber, "+6281234567890", None)],
            ),
            ("wa 6281234567890", &[(PhoneNumber, "+6281234567890", None)]),
            (
                "telp (021) 555-1234",
                &[(PhoneNumber, "+62215551234", None)],
            ),
            (
                "INV/20240115/MPL/3712345678 resi JP1234567890, telp 081234567890",
                &[
                    (OrderNumber, "INV/20240115/MPL/3712345678", None),
                    (TrackingNumber, "JP1234567890", Some(Jnt)),
                    (PhoneNumber, "+6281234567890", None),
                ],
            ),
            // Not numbers worth keeping.
            ("harga 150000 kak", &[]),
            ("tipe BL-300 ada?", &[]),
            ("jam 08.00-17.00", &[]),
            ("tanggal 12/05/2024", &[]),
            ("pesanan saya belum sampai", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let got: Vec<(EntityKind, String, Option<Courier>)> = extract(text)
                .into_iter()
                .map(|e| (e.kind, e.value, e.courier))
                .collect();
            let want: Vec<(EntityKind, String, Option<Courier>)> = want
                .iter()
                .map(|(k, v, c)| (*k, v.to_string(), *c))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn template_values_name_the_first_of_each_kind() {
        let e = extract(
            "INV/20240115/MPL/3712345678, resi JP1234567890, 0812-3456-7890, INV-2024-000124",
        );
        let vars = template_values(&e);
        assert_eq!(
            vars,
            vec![
                ("case.order_id", "INV/20240115/MPL/3712345678".to_string()),
                ("case.tracking_number", "JP1234567890".to_string()),
                ("case.courier", "J&T".to_string()),
                ("case.phone", "+6281234567890".to_string()),
            ]
        );
        for (name, _) in &vars {
            assert!(crate::intents::BUILTIN_VARIABLES.contains(name), "{name}");
        }
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "Kak, resi JP1234567890 ya";
        let e = &extract(text)[0];
        assert_eq!(&text[e.span.clone()], "JP1234567890");
        assert_eq!(first(&extract(text), TrackingNumber), Some(e));
        assert_eq!(first(&extract(text), PhoneNumber), None);
    }
}
