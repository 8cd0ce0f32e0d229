//! Everything stored about one contact, as one JSON document: the contact
//! (profile, notes, labels, opt-outs), every case with its transcript and the
//! delivery of our messages, its survey and its files (the records; the
//! bytes are served by the media routes), the broadcasts they were in, and
//! the dead letters of the job queues that mention them.

use serde_json::{Value, json};

use crate::broadcast::erasure as audiences;
use crate::channels::Channel;
use crate::store::{Store, StoreResult, queues};

/// Names the document's shape, so a reader can tell versions apart.
pub const FORMAT: &str = "balas.contact-export/1";

/// Files listed per case at most.
const MAX_FILES: usize = 10_000;
/// Dead letters looked at per queue at most (as the erasure does).
const MAX_DEAD: u64 = 100_000;

/// The export of a contact, or `None` when nothing is stored about them.
pub async fn export(
    store: &Store,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Option<Value>> {
    let contact = store.contact(channel, external_id).await?;
    let broadcasts = audiences::find(store, channel, external_id).await?;
    let dead_letters = dead_letters(store, external_id).await?;
    if contact.is_none() && broadcasts.is_empty() && dead_letters.is_empty() {
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
        "dead_letters": dead_letters,
    })))
}

/// The dead letters that mention the contact id (the ones the erasure
/// deletes): the queue and the entry (JSON, or text when it is not).
async fn dead_letters(store: &Store, external_id: &str) -> StoreResult<Vec<Value>> {
    let mut out = Vec::new();
    for queue in queues::ALL {
        for entry in store.dead_letters(queue, 0, MAX_DEAD).await? {
            if super::erasure::mentions(&entry, external_id) {
                let entry = serde_json::from_slice::<Value>(&entry)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&entry).into()));
                out.push(json!({ "queue": queue, "entry": entry }));
            }
        }
    }
    Ok(out)
}

/// One case: the conversation, its transcript with delivery states, its
/// survey and its files.
async fn case(store: &Store, id: &str) -> StoreResult<Value> {
    let conversation = store.conversation(id).await?;
    let transcript = store.transcript(id).await?;
    let records = store.records_of(&transcript).await?;
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
