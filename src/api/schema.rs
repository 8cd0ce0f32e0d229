//! OpenAPI schemas of domain types the API reads, kept in the API layer so
//! the domain modules know nothing of the API description.
//!
//! Enums get their values from the domain type itself (its `as_str` or serde
//! name, behind an exhaustive `match`, so a new variant cannot be forgotten).
//! The broadcast request's nested parts are mirrored here as documentation
//! types: they describe what [`crate::broadcast`] deserializes (a test below
//! checks that both read the same examples) and serve no other purpose.

use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use crate::channels::Channel;
use crate::config::Role;
use crate::conversation::State as ConvState;
use crate::reports::GroupBy;
use crate::store::PresenceStatus;

/// A string schema allowing only `values`.
fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(str::to_string)))
        .description(Some(description))
        .build()
}

/// Every role, in the order the docs list them.
fn roles() -> [Role; 4] {
    // Fails to compile when a role is added and not listed below.
    let _exhaustive = |r: Role| match r {
        Role::Agent | Role::Supervisor | Role::Marketer | Role::Admin => (),
    };
    [Role::Agent, Role::Supervisor, Role::Marketer, Role::Admin]
}

/// Every channel.
fn channels() -> [Channel; 2] {
    let _exhaustive = |c: Channel| match c {
        Channel::WhatsApp | Channel::Instagram => (),
    };
    [Channel::WhatsApp, Channel::Instagram]
}

/// Every conversation state.
fn states() -> [ConvState; 4] {
    let _exhaustive = |s: ConvState| match s {
        ConvState::Bot | ConvState::Queued | ConvState::Assigned | ConvState::Resolved => (),
    };
    [
        ConvState::Bot,
        ConvState::Queued,
        ConvState::Assigned,
        ConvState::Resolved,
    ]
}

/// Every presence status.
fn presence_statuses() -> [PresenceStatus; 3] {
    let _exhaustive = |p: PresenceStatus| match p {
        PresenceStatus::Online | PresenceStatus::Away | PresenceStatus::Offline => (),
    };
    [
        PresenceStatus::Online,
        PresenceStatus::Away,
        PresenceStatus::Offline,
    ]
}

/// Every report grouping, by its serde name.
fn group_bys() -> Vec<String> {
    let _exhaustive = |g: GroupBy| match g {
        GroupBy::Day | GroupBy::Agent | GroupBy::Queue | GroupBy::Channel | GroupBy::Number => (),
    };
    [
        GroupBy::Day,
        GroupBy::Agent,
        GroupBy::Queue,
        GroupBy::Channel,
        GroupBy::Number,
    ]
    .iter()
    .filter_map(|g| serde_json::to_value(g).ok())
    .filter_map(|v| v.as_str().map(str::to_string))
    .collect()
}

/// Schema of a [`Role`].
pub fn role() -> Object {
    string_enum(roles().map(Role::as_str), "A user's role.")
}

/// Schema of an `Option<Role>` field, where `null` means "leave it".
pub fn optional_role() -> Object {
    let mut schema = role();
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

/// Schema of a [`Channel`].
pub fn channel() -> Object {
    string_enum(channels().map(Channel::as_str), "A messaging platform.")
}

/// Schema of a conversation state filter.
pub fn state() -> Object {
    string_enum(states().map(ConvState::as_str), "A conversation state.")
}

/// Schema of a [`PresenceStatus`].
pub fn presence_status() -> Object {
    string_enum(
        presence_statuses().map(PresenceStatus::as_str),
        "What an agent says about themselves: `online` takes conversations, \
         `away` is at the desk but takes no new ones, `offline` is not working.",
    )
}

/// Schema of a [`GroupBy`].
pub fn group_by() -> Object {
    let names = group_bys();
    string_enum(names.iter().map(String::as_str), "How to group a report.")
}

/// The message of a broadcast: a WhatsApp template, or text with optional
/// reply buttons (mirrors [`crate::broadcast::BroadcastMessage`]).
#[derive(ToSchema, serde::Deserialize)]
#[serde(untagged)]
#[schema(as = BroadcastMessage)]
#[allow(dead_code)] // documentation only
pub enum BroadcastMessageDoc {
    /// An approved WhatsApp template (required outside the 24-hour window).
    Template(TemplateMessageDoc),
    /// Free text with optional buttons (only to recipients inside the window).
    Text(TextMessageDoc),
}

/// `{"template": {...}}`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = TemplateMessage)]
#[allow(dead_code)]
pub struct TemplateMessageDoc {
    /// The template.
    template: TemplateDoc,
}

/// A template reference.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = Template)]
#[allow(dead_code)]
pub struct TemplateDoc {
    /// Template name.
    name: String,
    /// Language code of the approved translation (default `id`).
    language: Option<String>,
    /// Body parameters, each may contain `{{variable}}` placeholders.
    body_parameters: Option<Vec<String>>,
}

/// `{"text": ..., "buttons": [...]}`.
#[derive(ToSchema, serde::Deserialize)]
#[schema(as = TextMessage)]
#[allow(dead_code)]
pub struct TextMessageDoc {
    /// The text, with `{{variable}}` placeholders.
    text: String,
    /// Reply buttons.
    buttons: Option<Vec<ButtonDoc>>,
}

/// A reply button.
#[derive(ToSchema, serde::Deserialize)]
#[schema(as = Button)]
#[allow(dead_code)]
pub struct ButtonDoc {
    /// Payload returned when tapped.
    id: String,
    /// Label shown to the customer.
    title: String,
}

/// Recipients and/or a segment (mirrors
/// [`crate::broadcast::audience::AudienceSpec`]).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = Audience)]
#[allow(dead_code)]
pub struct AudienceDoc {
    /// Explicit recipients.
    recipients: Option<Vec<RecipientDoc>>,
    /// A segment of stored contacts (of the broadcast's channel).
    segment: Option<SegmentDoc>,
}

/// One recipient with their template variables.
#[derive(ToSchema, serde::Deserialize)]
#[schema(as = Recipient)]
#[allow(dead_code)]
pub struct RecipientDoc {
    /// WhatsApp number (digits, `+` allowed) or Instagram IGSID.
    to: String,
    /// Values for `{{name}}`-style placeholders.
    variables: Option<BTreeMap<String, String>>,
}

/// A segment of stored contacts and cases; every condition given must hold
/// (mirrors [`crate::broadcast::audience::Segment`]).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = Segment)]
#[allow(dead_code)]
pub struct SegmentDoc {
    /// Only cases resolved at or after this (RFC 3339 or YYYY-MM-DD).
    resolved_from: Option<String>,
    /// Only cases resolved at or before this.
    resolved_to: Option<String>,
    /// CSAT of such a case at most this.
    csat_max: Option<u8>,
    /// CSAT of such a case at least this.
    csat_min: Option<u8>,
    /// The case went through this queue.
    queue: Option<String>,
    /// The contact has this label.
    label: Option<String>,
    /// The contact wrote within this many days.
    last_inbound_within_days: Option<u32>,
}

/// The form of `POST /api/v1/conversations/{id}/attachments`.
#[derive(ToSchema)]
#[schema(as = AttachmentForm)]
#[allow(dead_code)]
pub struct AttachmentFormDoc {
    /// The file.
    #[schema(content_media_type = "application/octet-stream")]
    file: String,
    /// Optional caption.
    caption: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listed names are the ones the domain types deserialize.
    #[test]
    fn enum_names_parse_as_the_domain_types() {
        let names = |o: Object| -> Vec<String> {
            o.enum_values
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(names(optional_role()).len(), names(role()).len() + 1);
        for n in names(role()) {
            serde_json::from_value::<Role>(n.clone().into()).expect(&n);
        }
        for n in names(channel()) {
            serde_json::from_value::<Channel>(n.clone().into()).expect(&n);
        }
        for n in names(state()) {
            assert!(ConvState::parse(&n).is_some(), "{n}");
        }
        let statuses = names(presence_status());
        assert_eq!(statuses.len(), 3);
        for n in statuses {
            serde_json::from_value::<PresenceStatus>(n.clone().into()).expect(&n);
        }
        let groups = names(group_by());
        assert_eq!(groups.len(), 5);
        for n in groups {
            serde_json::from_value::<GroupBy>(n.clone().into()).expect(&n);
        }
    }

    /// The mirrored broadcast parts accept and refuse what the domain types do.
    #[test]
    fn broadcast_mirrors_read_what_the_domain_reads() {
        use crate::broadcast::BroadcastMessage;
        use crate::broadcast::audience::{AudienceSpec, Segment};
        let messages = [
            serde_json::json!({"template": {"name": "promo"}}),
            serde_json::json!({"template": {"name": "promo", "language": "en", "body_parameters": ["{{name}}"]}}),
            serde_json::json!({"text": "Halo {{name}}", "buttons": [{"id": "a", "title": "Ya"}]}),
            serde_json::json!({"template": {"name": "x", "extra": 1}}),
            serde_json::json!({"buttons": []}),
        ];
        for m in messages {
            assert_eq!(
                serde_json::from_value::<BroadcastMessageDoc>(m.clone()).is_ok(),
                serde_json::from_value::<BroadcastMessage>(m.clone()).is_ok(),
                "{m}"
            );
        }
        let audiences = [
            serde_json::json!({"recipients": [{"to": "62812", "variables": {"name": "Sari"}}]}),
            serde_json::json!({"segment": {"csat_max": 2, "queue": "billing", "last_inbound_within_days": 7}}),
            serde_json::json!({"segment": {"resolved_from": "2026-01-01", "resolved_to": "2026-02-01", "csat_min": 1, "label": "vip"}}),
            serde_json::json!({"segment": {"unknown": 1}}),
            serde_json::json!({"other": []}),
        ];
        for a in audiences {
            assert_eq!(
                serde_json::from_value::<AudienceDoc>(a.clone()).is_ok(),
                serde_json::from_value::<AudienceSpec>(a.clone()).is_ok(),
                "{a}"
            );
            if let Some(seg) = a.get("segment") {
                assert_eq!(
                    serde_json::from_value::<SegmentDoc>(seg.clone()).is_ok(),
                    serde_json::from_value::<Segment>(seg.clone()).is_ok(),
                    "{seg}"
                );
            }
        }
    }
}
