//! One person in broadcast audiences: finding them (export) and forgetting
//! them (erasure of their personal data).
//!
//! A stored audience is a list of chunks of recipients, walked by position
//! (chunk, offset). Forgetting a recipient replaces them in place by an empty
//! one — no number, no variables — so every position stays where it was and a
//! walk in progress neither skips nor repeats anyone; the walk passes over
//! empty recipients. Their outbound record and its outbox job, whose ids hold
//! the number, are deleted; the broadcast's counts stay, so its totals still
//! add up.

use serde::Serialize;

use super::audience::{Recipient, normalize_to};
use super::{Broadcast, record_id};
use crate::channels::Channel;
use crate::store::{OutboundRecord, OutboundState, Store, StoreError, StoreResult, queues};

/// What a broadcast holds about one person.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    /// The broadcast.
    pub broadcast_id: String,
    /// Its name.
    pub name: String,
    /// Where they are in its audience: (chunk, offset).
    pub positions: Vec<(u64, usize)>,
    /// Their values for the message's placeholders.
    pub variables: Vec<std::collections::BTreeMap<String, String>>,
    /// The message sent to them, if it was handed to the outbox.
    pub delivery: Option<OutboundRecord>,
}

/// Whether `r` is a recipient forgotten by [`forget`] (the walk skips it).
pub fn is_forgotten(r: &Recipient) -> bool {
    r.to.is_empty()
}

/// The forms of a contact id that an audience may hold.
fn audience_id(channel: Channel, external_id: &str) -> String {
    normalize_to(channel, external_id).unwrap_or_else(|_| external_id.to_string())
}

async fn chunk(store: &Store, id: &str, index: u64) -> StoreResult<Vec<Recipient>> {
    match store.broadcast_chunk(id, index).await? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            key: format!("broadcast {id} recipients chunk {index}"),
            reason: e.to_string(),
        }),
    }
}

/// Every broadcast on `channel` that holds the contact, with what it holds.
/// Reads every stored audience of the channel: the cost grows with the
/// recipients of all broadcasts.
pub async fn find(
    store: &Store,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Vec<Membership>> {
    let to = audience_id(channel, external_id);
    let mut out = Vec::new();
    for b in store.broadcasts::<Broadcast>().await? {
        if b.channel != channel {
            continue;
        }
        let mut m = Membership {
            broadcast_id: b.id.clone(),
            name: b.name.clone(),
            positions: Vec::new(),
            variables: Vec::new(),
            delivery: store.outbound(&record_id(&b.id, &to)).await?,
        };
        for index in 0..store.broadcast_chunk_count(&b.id).await? {
            for (offset, r) in chunk(store, &b.id, index).await?.into_iter().enumerate() {
                if r.to == to {
                    m.positions.push((index, offset));
                    m.variables.push(r.variables);
                }
            }
        }
        if !m.positions.is_empty() || m.delivery.is_some() {
            out.push(m);
        }
    }
    Ok(out)
}

/// Forgets the contact in every broadcast on `channel`: their places in the
/// audiences become empty recipients, a message not sent yet is skipped, and
/// their outbound record is deleted. Returns how many broadcasts held them.
pub async fn forget(store: &Store, channel: Channel, external_id: &str) -> StoreResult<usize> {
    let to = audience_id(channel, external_id);
    let mut held = 0;
    for m in find(store, channel, external_id).await? {
        held += 1;
        let mut chunks: Vec<u64> = m.positions.iter().map(|(c, _)| *c).collect();
        chunks.dedup();
        for index in chunks {
            let mut recipients = chunk(store, &m.broadcast_id, index).await?;
            for r in recipients.iter_mut().filter(|r| r.to == to) {
                *r = Recipient {
                    to: String::new(),
                    variables: Default::default(),
                };
            }
            let bytes = serde_json::to_vec(&recipients).map_err(|e| StoreError::Corrupt {
                key: format!("broadcast {} recipients", m.broadcast_id),
                reason: e.to_string(),
            })?;
            store
                .replace_broadcast_chunk(&m.broadcast_id, index, &bytes)
                .await?;
        }
        let rid = record_id(&m.broadcast_id, &to);
        // A message waiting in the outbox is not sent to someone erased.
        store
            .advance_outbound(&rid, OutboundState::Skipped, |r| {
                r.error_title = Some("contact erased".into());
            })
            .await?;
        // Its outbox job is named after the record, number included.
        store.cancel(queues::OUTBOX, &rid).await?;
        store.delete_outbound(&rid).await?;
    }
    Ok(held)
}
