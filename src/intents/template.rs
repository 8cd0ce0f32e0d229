//! Reply templates with `{{variable}}` placeholders and sections.
//!
//! Templates are parsed when the rules are loaded, so a typo such as
//! `{{contact.nama}}` is a load error instead of a broken message to a customer.
//! The built-in variables are [`BUILTIN_VARIABLES`]; deployments add their own
//! through [`crate::intents::LoadOptions::config_variables`].
//!
//! A section shows text only when a variable has a value, an inverted section
//! only when it has none (the Mustache spelling), so a reply never asks for a
//! number the customer already gave and says "we are closed" only when closed:
//!
//! ```text
//! {{#case.order_id}}Pesanan {{case.order_id}} sedang kami cek.{{/case.order_id}}
//! {{^case.order_id}}Mohon kirimkan nomor pesanan Anda.{{/case.order_id}}
//! ```

use std::collections::BTreeSet;

/// Variables every template may use.
///
/// - `contact.name`: the customer's display name; renders as `Kak` when unknown.
/// - `business_hours.next_open`: when the team is next available, e.g. `Senin 08.00`.
/// - `business_hours.schedule`: the opening hours of `[business_hours]`, written out.
/// - `business_hours.open`: set (non-empty) while the team is working; for sections.
/// - `queue.position`: the customer's position in the agent queue.
/// - `case.id`: the support case id.
/// - `media.kind`: what the customer sent ("foto", "video", "dokumen", "pesan suara";
///   in English "photo" …), for the media intents.
/// - `case.order_id`, `case.tracking_number`, `case.courier`, `case.ticket_id`,
///   `case.phone`: numbers the customer gave in this case (see
///   [`super::entities::template_values`]); unset until given.
/// - `case.topic`: the button label of the topic a request for a person is about.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "contact.name",
    "business_hours.next_open",
    "business_hours.schedule",
    "business_hours.open",
    "queue.position",
    "case.id",
    "media.kind",
    "case.order_id",
    "case.tracking_number",
    "case.courier",
    "case.ticket_id",
    "case.phone",
    "case.topic",
];

/// What `{{contact.name}}` renders as when the name is unknown.
pub const CONTACT_NAME_FALLBACK: &str = "Kak";

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
    /// `{{#name}}body{{/name}}` (or `{{^name}}` when `inverted`).
    Section {
        name: String,
        inverted: bool,
        body: Vec<Segment>,
    },
}

/// A reply text, parsed at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate {
    source: String,
    segments: Vec<Segment>,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{name}}` is neither built in nor defined in the config.
    #[error("unknown variable `{{{{{name}}}}}`; use one of {allowed} or define it in the config")]
    UnknownVariable {
        /// The variable name as written.
        name: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// A `{{` without its `}}`.
    #[error("`{{{{` without a closing `}}}}`")]
    Unclosed,
    /// `{{}}`.
    #[error("empty variable `{{{{}}}}`")]
    Empty,
    /// `{{#name}}` without its `{{/name}}`.
    #[error("section `{{{{#{0}}}}}` is not closed: add `{{{{/{0}}}}}`")]
    UnclosedSection(String),
    /// `{{/name}}` that closes nothing, or another section.
    #[error("`{{{{/{0}}}}}` closes no open section{1}")]
    StrayClose(String, String),
}

impl ReplyTemplate {
    /// Parses `source`, accepting the built-in variables and `extra`.
    pub fn parse(source: &str, extra: &BTreeSet<String>) -> Result<ReplyTemplate, TemplateError> {
        // Open sections: (name, inverted, segments before the section).
        let mut stack: Vec<(String, bool, Vec<Segment>)> = Vec::new();
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let tag = after[..end].trim();
            let (sigil, name) = match tag.chars().next() {
                Some(c @ ('#' | '^' | '/')) => (Some(c), tag[1..].trim()),
                _ => (None, tag),
            };
            if name.is_empty() {
                return Err(TemplateError::Empty);
            }
            if !BUILTIN_VARIABLES.contains(&name) && !extra.contains(name) {
                let allowed: Vec<&str> = BUILTIN_VARIABLES
                    .iter()
                    .copied()
                    .chain(extra.iter().map(String::as_str))
                    .collect();
                return Err(TemplateError::UnknownVariable {
                    name: name.to_string(),
                    allowed: allowed.join(", "),
                });
            }
            match sigil {
                None => segments.push(Segment::Var(name.to_string())),
                Some(c @ ('#' | '^')) => {
                    stack.push((name.to_string(), c == '^', std::mem::take(&mut segments)));
                }
                _ => match stack.pop() {
                    Some((open, inverted, outer)) if open == name => {
                        let body = std::mem::replace(&mut segments, outer);
                        segments.push(Segment::Section {
                            name: open,
                            inverted,
                            body,
                        });
                    }
                    Some((open, ..)) => {
                        return Err(TemplateError::StrayClose(
                            name.to_string(),
                            format!(" (the open section is `{open}`)"),
                        ));
                    }
                    None => return Err(TemplateError::StrayClose(name.to_string(), String::new())),
                },
            }
            rest = &after[end + 2..];
        }
        if let Some((open, ..)) = stack.pop() {
            return Err(TemplateError::UnclosedSection(open));
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(ReplyTemplate {
            source: source.to_string(),
            segments,
        })
    }

    /// The template as written in the rule file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables used (sections included), in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        fn walk<'a>(segments: &'a [Segment], out: &mut Vec<&'a str>) {
            for s in segments {
                match s {
                    Segment::Var(v) => out.push(v),
                    Segment::Section { name, body, .. } => {
                        out.push(name);
                        walk(body, out);
                    }
                    Segment::Text(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.segments, &mut out);
        out.into_iter()
    }

    /// Renders the template. `vars` returns a variable's value; a missing
    /// `contact.name` renders as [`CONTACT_NAME_FALLBACK`], any other missing
    /// variable as an empty string. A section renders when its variable has a
    /// non-empty value, an inverted one when it has none.
    pub fn render(&self, vars: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        render_into(&self.segments, vars, &mut out);
        out
    }
}

fn render_into(segments: &[Segment], vars: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Var(name) => match vars(name) {
                Some(value) => out.push_str(&value),
                None if name == "contact.name" => out.push_str(CONTACT_NAME_FALLBACK),
                None => {}
            },
            Segment::Section {
                name,
                inverted,
                body,
            } => {
                let set = vars(name).is_some_and(|v| !v.is_empty());
                if set != *inverted {
                    render_into(body, vars, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra() -> BTreeSet<String> {
        ["shop.name".to_string()].into()
    }

    #[test]
    fn render_table() {
        let vars = |name: &str| match name {
            "queue.position" => Some("3".to_string()),
            "shop.name" => Some("Toko Nova".to_string()),
            _ => None,
        };
        let cases = [
            ("Halo {{contact.name}}!", "Halo Kak!"),
            ("Antrean ke-{{ queue.position }}.", "Antrean ke-3."),
            ("{{shop.name}}", "Toko Nova"),
            ("Kasus {{case.id}}", "Kasus "),
            ("tanpa variabel", "tanpa variabel"),
            ("", ""),
        ];
        for (source, want) in cases {
            let t = ReplyTemplate::parse(source, &extra()).unwrap();
            assert_eq!(t.render(&vars), want, "template {source:?}");
        }
        let named = ReplyTemplate::parse("Halo {{contact.name}}", &extra()).unwrap();
        assert_eq!(named.render(&|_| Some("Rina".into())), "Halo Rina");
    }

    #[test]
    fn parse_errors() {
        let cases = [
            (
                "Halo {{contact.nama}}",
                "unknown variable `{{contact.nama}}`",
            ),
            ("Halo {{contact.name", "without a closing"),
            ("Halo {{ }}", "empty variable"),
        ];
        for (source, want) in cases {
            let err = ReplyTemplate::parse(source, &extra()).unwrap_err();
            assert!(err.to_string().contains(want), "{source:?}: {err}");
        }
        let err = ReplyTemplate::parse("{{x}}", &extra()).unwrap_err();
        assert!(err.to_string().contains("shop.name"), "{err}");
    }

    #[test]
    fn sections_table() {
        let order = |v: &str| match v {
            "case.order_id" => Some("INV/1".to_string()),
            "business_hours.open" => Some(String::new()),
            _ => None,
        };
        let cases = [
            (
                "{{#case.order_id}}Pesanan {{case.order_id}} kami cek.{{/case.order_id}}{{^case.order_id}}Kirim nomor pesanan.{{/case.order_id}}",
                "Pesanan INV/1 kami cek.",
                "Kirim nomor pesanan.",
            ),
            // An empty value counts as unset.
            (
                "{{^business_hours.open}}Tutup.{{/business_hours.open}}",
                "Tutup.",
                "Tutup.",
            ),
            (
                "a{{#case.id}}b{{#case.order_id}}c{{/case.order_id}}{{/case.id}}d",
                "ad",
                "ad",
            ),
            ("{{# case.order_id }}x{{/ case.order_id }}", "x", ""),
        ];
        for (source, with, without) in cases {
            let t = ReplyTemplate::parse(source, &extra()).unwrap();
            assert_eq!(t.render(&order), with, "{source:?}");
            assert_eq!(t.render(&|_| None), without, "{source:?}");
        }
        let nested = ReplyTemplate::parse(
            "{{#case.id}}{{#case.order_id}}c{{/case.order_id}}{{/case.id}}",
            &extra(),
        )
        .unwrap();
        assert_eq!(nested.render(&|v| Some(v.to_string())), "c");
        assert_eq!(
            nested.variables().collect::<Vec<_>>(),
            ["case.id", "case.order_id"]
        );
    }

    #[test]
    fn section_errors() {
        let cases = [
            (
                "{{#case.order_id}}x",
                "section `{{#case.order_id}}` is not closed",
            ),
            (
                "x{{/case.order_id}}",
                "`{{/case.order_id}}` closes no open section",
            ),
            (
                "{{#case.id}}{{/case.order_id}}",
                "(the open section is `case.id`)",
            ),
            (
                "{{#case.nomor}}x{{/case.nomor}}",
                "unknown variable `{{case.nomor}}`",
            ),
        ];
        for (source, want) in cases {
            let err = ReplyTemplate::parse(source, &extra()).unwrap_err();
            assert!(err.to_string().contains(want), "{source:?}: {err}");
        }
    }

    #[test]
    fn variables_listed() {
        let t = ReplyTemplate::parse("{{case.id}} {{contact.name}}", &extra()).unwrap();
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            ["case.id", "contact.name"]
        );
    }
}
