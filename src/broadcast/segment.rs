//! Segments: an audience chosen from stored contacts and their cases (recent
//! customers, a label, a queue, a CSAT range) instead of a list, resolved when
//! the broadcast starts. A broadcast goes out from one number or account, so
//! a segment only holds that sender's contacts: customers who wrote to it
//! (within `last_inbound_within_days` of it, when given).

use std::collections::BTreeMap;

use super::audience::{Recipient, Segment};
use super::{BroadcastMessage, Broadcasts};
use crate::channels::Channel;
use crate::store::StoreResult;

/// Resolves a segment over stored contacts and cases into recipients: the
/// contacts of `sender` (the broadcast's number or account; `None`, a
/// channel set up without ids, means every contact of the channel).
pub async fn resolve(
    broadcasts: &Broadcasts,
    channel: Channel,
    sender: Option<&str>,
    segment: &Segment,
    message: &BroadcastMessage,
) -> StoreResult<Vec<Recipient>> {
    let store = broadcasts.store();
    let tz = broadcasts.config().business_hours.timezone.zone().clone();
    let now = store.now_ms();
    let since = segment
        .last_inbound_within_days
        .map_or(0, |d| now - i64::from(d) * 86_400_000);
    let parse = |s: &Option<String>, end: bool| -> Option<i64> {
        s.as_deref()
            .and_then(|x| crate::reports::parse_instant(x, &tz, end).ok())
    };
    let (from, to) = (
        parse(&segment.resolved_from, false),
        parse(&segment.resolved_to, true),
    );
    let needs_case = from.is_some()
        || to.is_some()
        || segment.csat_min.is_some()
        || segment.csat_max.is_some()
        || segment.queue.is_some();
    let required = message.placeholders();
    // Contacts from before per-number tracking wrote to the one number the
    // deployment had then, which stayed its default.
    let is_default =
        sender.is_some_and(|f| broadcasts.outbox().senders().ids(channel).first() == Some(&f));
    let mut out = Vec::new();
    let keys: Vec<(Channel, String)> = store
        .contacts_active_between(since, now, 10_000_000)
        .await?;
    for batch in keys.chunks(500) {
        let wanted: Vec<(Channel, String)> = batch
            .iter()
            .filter(|(c, _)| *c == channel)
            .cloned()
            .collect();
        for contact in store.contacts(&wanted).await? {
            if let Some(number) = sender {
                let wrote = match contact.last_inbound_by.get(number) {
                    Some(at) => *at >= since,
                    None => contact.last_inbound_by.is_empty() && is_default,
                };
                if !wrote {
                    continue;
                }
            }
            if segment
                .label
                .as_ref()
                .is_some_and(|l| !contact.labels.contains(l))
            {
                continue;
            }
            if needs_case {
                let mut hit = false;
                for case in store.conversations(&contact.cases).await? {
                    let Some(resolved) = case.resolved_ms else {
                        continue;
                    };
                    if from.is_some_and(|f| resolved < f) || to.is_some_and(|t| resolved > t) {
                        continue;
                    }
                    if segment
                        .queue
                        .as_ref()
                        .is_some_and(|q| case.queue.as_ref() != Some(q))
                    {
                        continue;
                    }
                    if segment.csat_min.is_some() || segment.csat_max.is_some() {
                        let Some(csat) = store.survey(&case.id).await?.and_then(|s| s.csat) else {
                            continue;
                        };
                        if segment.csat_min.is_some_and(|m| csat < m)
                            || segment.csat_max.is_some_and(|m| csat > m)
                        {
                            continue;
                        }
                    }
                    hit = true;
                    break;
                }
                if !hit {
                    continue;
                }
            }
            let mut variables = BTreeMap::new();
            variables.insert(
                "name".to_string(),
                contact.display_name().unwrap_or("Kak").to_string(),
            );
            if required.iter().all(|v| variables.contains_key(v)) {
                out.push(Recipient {
                    to: contact.external_id.clone(),
                    variables,
                });
            }
        }
    }
    Ok(out)
}
