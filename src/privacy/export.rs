//! Everything stored about one contact, as one JSON document: the contact
//! (profile, notes, labels, opt-outs), every case with its transcript and the
//! delivery of our messages, its survey and its files (the records; the
//! bytes are served by the media routes), and the broadcasts they were in.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::broadcast::erasure as audiences;
use crate::channels::Channel;
use crate::store::{Speaker, Store, StoreResult};

/// Names the document's shape, so a reader can tell versions apart.
pub const FORMAT: &str = "balas.contact-export/1";

/// Files listed per case at most.
const MAX_FILES: usize = 10_000;

/// The export of a contact, or `None` when nothing is stored about them.
pub async fn export(
    store: &Store,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Option<Value>> {
    let contact = store.contact(channel, external_id).await?;
    let broadcasts = audiences::find(store, channel, external_id).await?;
    if contact.is_none() && broadcasts.is_empty() {
        return Ok(None);
    }
    let mut case_ids: Vec<String> = contact
        .as_ref()
        .map(|c| c.cases.clone())
        .unwrap_or_default();
    if let Some(open) = contact.as_ref().and_then(|c| c.current_case.clone())
        && !case_ids.contains(&open)
    {
        case_ids.push(open);
    }
    let mut cases = Vec::with_capacity(case_ids.len());
    for id in &case_ids {
        cases.push(case(store, id).await?);
    }
    Ok(Some(json!({
        "format": FORMAT,
        "exported_ms": store.now_ms(),
        "channel": channel,
        "external_id": external_id,
        "contact": contact,
        "cases": cases,
        "broadcasts": broadcasts,
    })))
}

/// One case: the conversation, its transcript with delivery states, its
/// survey and its files.
async fn case(store: &Store, id: &str) -> StoreResult<Value> {
    let conversation = store.conversation(id).await?;
    let transcript = store.transcript(id).await?;
    let ours: Vec<String> = transcript
        .iter()
        .filter(|e| !matches!(e.speaker, Speaker::Customer | Speaker::System))
        .filter_map(|e| e.message_id.clone())
        .collect();
    let records: BTreeMap<String, _> = store
        .outbound_many(&ours)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let messages: Vec<Value> = transcript
        .iter()
        .map(|e| {
            let delivery = e.message_id.as_ref().and_then(|m| records.get(m)).map(|r| {
                json!({
                    "state": r.state, "error_code": r.error_code, "error_title": r.error_title,
                    "created_ms": r.created_ms, "updated_ms": r.updated_ms,
                })
            });
            json!({
                "at_ms": e.at_ms, "speaker": e.speaker, "text": e.text,
                "message_id": e.message_id, "delivery": delivery,
            })
        })
        .collect();
    Ok(json!({
        "id": id,
        "conversation": conversation,
        "transcript": messages,
        "survey": store.survey(id).await?,
        "files": store.conversation_attachments(id, MAX_FILES).await?,
    }))
}
