//! WhatsApp message templates as Meta lists them: `GET
//! /{waba-id}/message_templates` (WhatsApp Business Management API), read page
//! by page with the `after` cursor.
//!
//! What Balas keeps of a template is what a marketer needs to pick it and
//! what a broadcast needs to be checked against it: name, language, status,
//! category, the body text with its parameter count, header and footer text,
//! and the buttons.

use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph_error::{classify_response, network_error};
use super::outbound::SendError;

/// Most pages read in one sync (100 templates each).
const MAX_PAGES: usize = 50;

/// One template in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTemplate {
    /// Meta's id.
    #[serde(default)]
    pub id: String,
    /// Name (`promo_akhir_tahun`).
    pub name: String,
    /// Language code (`id`, `en_US`).
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED` …
    pub status: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// The body text with its `{{1}}` (or `{{name}}`) placeholders.
    pub body: String,
    /// How many distinct body parameters the body takes.
    pub parameters: u32,
    /// Header text, when the header is text.
    #[serde(default)]
    pub header: Option<String>,
    /// Footer text.
    #[serde(default)]
    pub footer: Option<String>,
    /// Button labels with their type (`QUICK_REPLY`, `URL`, `PHONE_NUMBER` …).
    #[serde(default)]
    pub buttons: Vec<TemplateButton>,
}

/// A button of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateButton {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `COPY_CODE` …
    pub kind: String,
    /// The label.
    pub text: String,
}

impl MessageTemplate {
    /// Whether it may be sent.
    pub fn approved(&self) -> bool {
        self.status == "APPROVED"
    }

    /// The body with parameter `n` (1-based, or the n-th named one) replaced by
    /// `values[n-1]`; placeholders without a value stay as written.
    pub fn render_body(&self, values: &[String]) -> String {
        let names = placeholder_names(&self.body);
        let mut out = self.body.clone();
        for (i, name) in names.iter().enumerate() {
            let index = name
                .parse::<usize>()
                .ok()
                .map_or(i, |n| n.saturating_sub(1));
            if let Some(v) = values.get(index) {
                out = out.replace(&format!("{{{{{name}}}}}"), v);
            }
        }
        out
    }
}

/// Distinct placeholder names of a template body, in order of appearance.
pub fn placeholder_names(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
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

/// Why the templates could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateSyncError {
    /// The Graph API refused or failed.
    #[error("the Graph API answered: {0}")]
    Graph(String),
    /// The answer was not the documented shape.
    #[error("unexpected answer from the Graph API: {0}")]
    Shape(String),
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// One template object of the list.
fn parse_template(v: &Value) -> Result<MessageTemplate, String> {
    let name = text_of(v, "name").ok_or("a template without a name")?;
    let language = text_of(v, "language").ok_or_else(|| format!("{name}: no language"))?;
    let mut t = MessageTemplate {
        id: text_of(v, "id").unwrap_or_default(),
        status: text_of(v, "status").unwrap_or_else(|| "UNKNOWN".into()),
        category: text_of(v, "category").unwrap_or_default(),
        name,
        language,
        body: String::new(),
        parameters: 0,
        header: None,
        footer: None,
        buttons: Vec::new(),
    };
    for c in v
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match c.get("type").and_then(Value::as_str) {
            Some("BODY") => t.body = text_of(c, "text").unwrap_or_default(),
            Some("HEADER") if c.get("format").and_then(Value::as_str) == Some("TEXT") => {
                t.header = text_of(c, "text");
            }
            Some("FOOTER") => t.footer = text_of(c, "text"),
            Some("BUTTONS") => {
                for b in c
                    .get("buttons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    t.buttons.push(TemplateButton {
                        kind: text_of(b, "type").unwrap_or_default(),
                        text: text_of(b, "text").unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
    }
    t.parameters = placeholder_names(&t.body).len() as u32;
    Ok(t)
}

/// One page of `GET /{waba-id}/message_templates`: the templates and the
/// `after` cursor when there is a next page.
pub fn parse_page(v: &Value) -> Result<(Vec<MessageTemplate>, Option<String>), String> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or("no `data` array")?;
    let templates = data.iter().map(parse_template).collect::<Result<_, _>>()?;
    let next = v
        .pointer("/paging/next")
        .and_then(Value::as_str)
        .is_some()
        .then(|| {
            v.pointer("/paging/cursors/after")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .flatten();
    Ok((templates, next))
}

/// Reads every template of the WhatsApp Business Account `waba_id`.
pub async fn fetch_templates(
    http: &reqwest::Client,
    api_base: &str,
    waba_id: &str,
    access_token: &str,
) -> Result<Vec<MessageTemplate>, TemplateSyncError> {
    let url = format!(
        "{}/{waba_id}/message_templates",
        api_base.trim_end_matches('/')
    );
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            (
                "fields",
                "id,name,language,status,category,components".to_string(),
            ),
            ("limit", "100".to_string()),
        ];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let page_url = reqwest::Url::parse_with_params(&url, &query)
            .map_err(|e| TemplateSyncError::Graph(format!("bad api_base {api_base:?}: {e}")))?;
        let resp = http
            .get(page_url)
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .send()
            .await
            .map_err(|e| TemplateSyncError::Graph(describe(&network_error(&e))))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TemplateSyncError::Graph(describe(&network_error(&e))))?;
        if !status.is_success() {
            return Err(TemplateSyncError::Graph(describe(&classify_response(
                status.as_u16(),
                None,
                &bytes,
            ))));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| TemplateSyncError::Shape(e.to_string()))?;
        let (page, next) = parse_page(&v).map_err(TemplateSyncError::Shape)?;
        all.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(all),
        }
    }
    Ok(all)
}

fn describe(e: &SendError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_templates() {
        let v = serde_json::json!({
            "data": [{
                "name": "promo_akhir_tahun", "language": "id", "status": "APPROVED",
                "category": "MARKETING", "id": "1234",
                "components": [
                    {"type": "HEADER", "format": "TEXT", "text": "Promo!"},
                    {"type": "BODY", "text": "Halo {{1}}, pakai kode {{2}} sebelum {{1}} lupa.",
                     "example": {"body_text": [["Budi", "DISKON10"]]}},
                    {"type": "FOOTER", "text": "Balas STOP untuk berhenti"},
                    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Mau"}]}
                ]
            }, {
                "name": "otp", "language": "en_US", "status": "REJECTED", "category": "AUTHENTICATION",
                "components": [{"type": "BODY", "text": "Code {{code}}"}]
            }],
            "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}, "next": "https://graph.facebook.com/…"}
        });
        let (templates, next) = parse_page(&v).unwrap();
        assert_eq!(next.as_deref(), Some("QVFJ"));
        let promo = &templates[0];
        assert_eq!((promo.parameters, promo.approved()), (2, true));
        assert_eq!(promo.header.as_deref(), Some("Promo!"));
        assert_eq!(promo.buttons[0].text, "Mau");
        assert_eq!(
            promo.render_body(&["Rina".into(), "HEMAT".into()]),
            "Halo Rina, pakai kode HEMAT sebelum Rina lupa."
        );
        assert_eq!(
            (templates[1].parameters, templates[1].approved()),
            (1, false)
        );
        let last = serde_json::json!({"data": [], "paging": {"cursors": {"after": "X"}}});
        assert_eq!(
            parse_page(&last).unwrap().1,
            None,
            "no `next`: the last page"
        );
        assert!(parse_page(&serde_json::json!({"error": {}})).is_err());
    }
}
