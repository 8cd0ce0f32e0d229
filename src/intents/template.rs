//! Reply templates with `{{variable}}` placeholders.
//!
//! Templates are parsed when the rules are loaded, so a typo such as
//! `{{contact.nama}}` is a load error instead of a broken message to a customer.
//! The built-in variables are [`BUILTIN_VARIABLES`]; deployments add their own
//! through [`crate::intents::LoadOptions::config_variables`].

use std::collections::BTreeSet;

/// Variables every template may use.
///
/// - `contact.name`: the customer's display name; renders as `Kak` when unknown.
/// - `business_hours.next_open`: when the team is next available, e.g. `Senin 08.00`.
/// - `queue.position`: the customer's position in the agent queue.
/// - `case.id`: the support case id.
/// - `media.kind`: what the customer sent ("foto", "video", "dokumen", "pesan suara";
///   in English "photo" …), for the media intents.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "contact.name",
    "business_hours.next_open",
    "queue.position",
    "case.id",
    "media.kind",
];

/// What `{{contact.name}}` renders as when the name is unknown.
pub const CONTACT_NAME_FALLBACK: &str = "Kak";

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
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
}

impl ReplyTemplate {
    /// Parses `source`, accepting the built-in variables and `extra`.
    pub fn parse(source: &str, extra: &BTreeSet<String>) -> Result<ReplyTemplate, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let name = after[..end].trim();
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
            segments.push(Segment::Var(name.to_string()));
            rest = &after[end + 2..];
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

    /// The variables used, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// Renders the template. `vars` returns a variable's value; a missing
    /// `contact.name` renders as [`CONTACT_NAME_FALLBACK`], any other missing
    /// variable as an empty string.
    pub fn render(&self, vars: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(name) => match vars(name) {
                    Some(value) => out.push_str(&value),
                    None if name == "contact.name" => out.push_str(CONTACT_NAME_FALLBACK),
                    None => {}
                },
            }
        }
        out
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
    fn variables_listed() {
        let t = ReplyTemplate::parse("{{case.id}} {{contact.name}}", &extra()).unwrap();
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            ["case.id", "contact.name"]
        );
    }
}
