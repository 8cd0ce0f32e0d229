//! What supervisors read: satisfaction next to response and resolution times.
//!
//! [`summarize`] is a pure function over the facts of resolved cases (and
//! their surveys), so the numbers are tested against values worked out by
//! hand; [`case_facts`] reads them from the store. The API serves the summary
//! as JSON and the surveys as CSV (`crate::api::reports`); `balas report`
//! prints it as a table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreResult, Survey};

/// What one resolved case contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFacts {
    /// Resolved at, Unix ms.
    pub resolved_ms: i64,
    /// Opened at.
    pub opened_ms: i64,
    /// Handed off at.
    pub handed_off_ms: Option<i64>,
    /// First agent reply at.
    pub first_agent_reply_ms: Option<i64>,
    /// Agent.
    pub agent: Option<String>,
    /// Queue.
    pub queue: Option<String>,
    /// Channel name.
    pub channel: String,
    /// The business number or account the customer wrote to (`None` for
    /// cases from before several numbers were supported).
    pub number: Option<String>,
    /// Resolved without a human.
    pub bot_only: bool,
    /// Its survey, if one was scheduled.
    pub survey: Option<Survey>,
    /// Times it was transferred.
    pub transfers: u32,
    /// When the customer came back after the resolution (a new case).
    pub reopened_ms: Option<i64>,
}

/// What one case opened in the period contributes (resolution rate).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedFacts {
    /// Opened at, Unix ms.
    pub opened_ms: i64,
    /// Agent now (or last).
    pub agent: Option<String>,
    /// Queue now (or last).
    pub queue: Option<String>,
    /// Channel name.
    pub channel: String,
    /// The business number or account it was opened on.
    pub number: Option<String>,
}

/// The targets the service measures are judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// A customer writing again within this after a resolution reopens it.
    pub reopen_window_ms: i64,
    /// The first agent reply should come within this after the handoff.
    pub first_response_ms: i64,
}

/// How to group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Calendar day in the business time zone.
    Day,
    /// Agent (`bot` for bot-only cases).
    Agent,
    /// Queue (`none` for bot-only cases).
    Queue,
    /// Channel.
    Channel,
    /// Business number or account (`default` for cases without one).
    Number,
}

/// Median and 90th percentile of a duration, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median_s: f64,
    /// 90th percentile (nearest rank).
    pub p90_s: f64,
}

/// The numbers of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Group key (`all` for the total).
    pub group: String,
    /// Resolved cases.
    pub cases: u64,
    /// Resolved by the bot alone.
    pub bot_only: u64,
    /// Handed to a person.
    pub handed_off: u64,
    /// Surveys actually sent.
    pub surveys_sent: u64,
    /// Surveys with at least a CSAT answer.
    pub surveys_answered: u64,
    /// answered / sent.
    pub response_rate: Option<f64>,
    /// Share of CSAT answers that are 4 or 5, in percent.
    pub csat_pct: Option<f64>,
    /// Average CSAT.
    pub csat_avg: Option<f64>,
    /// % promoters (9–10) minus % detractors (0–6).
    pub nps: Option<f64>,
    /// Average CES.
    pub ces_avg: Option<f64>,
    /// Handoff → first agent reply.
    pub first_response: Option<Spread>,
    /// Opened → resolved.
    pub resolution: Option<Spread>,
    /// Cases opened in the period.
    pub opened: u64,
    /// Resolved / opened in the period, in percent.
    pub resolution_rate_pct: Option<f64>,
    /// Resolved cases the customer reopened within the reopen window.
    pub reopened: u64,
    /// reopened / resolved, in percent.
    pub reopen_rate_pct: Option<f64>,
    /// Resolved with no transfer and no reopening.
    pub first_contact_resolved: u64,
    /// first_contact_resolved / resolved, in percent.
    pub first_contact_resolution_pct: Option<f64>,
    /// Handed-off cases with a first agent reply within the target.
    pub sla_met: u64,
    /// Handed-off resolved cases (the SLA's base).
    pub sla_cases: u64,
    /// sla_met / sla_cases, in percent.
    pub sla_attainment_pct: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn spread(mut v: Vec<f64>) -> Option<Spread> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median_s: median,
        p90_s: percentile(&v, 0.9),
    })
}

fn avg(v: &[u8]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round2(100.0 * part as f64 / whole as f64))
}

/// Summarizes one group: the cases resolved and the cases opened in it.
pub fn summarize_group(
    group: &str,
    cases: &[&CaseFacts],
    opened: u64,
    targets: Targets,
) -> Summary {
    let sent: Vec<&Survey> = cases
        .iter()
        .filter_map(|c| c.survey.as_ref())
        .filter(|s| s.sent_ms.is_some())
        .collect();
    let csat: Vec<u8> = sent.iter().filter_map(|s| s.csat).collect();
    let nps: Vec<u8> = sent.iter().filter_map(|s| s.nps).collect();
    let ces: Vec<u8> = sent.iter().filter_map(|s| s.ces).collect();
    let first: Vec<f64> = cases
        .iter()
        .filter_map(|c| Some((c.first_agent_reply_ms? - c.handed_off_ms?) as f64 / 1000.0))
        .collect();
    let resolution: Vec<f64> = cases
        .iter()
        .map(|c| (c.resolved_ms - c.opened_ms) as f64 / 1000.0)
        .collect();
    let bot_only = cases.iter().filter(|c| c.bot_only).count() as u64;
    let resolved = cases.len() as u64;
    let reopened_case = |c: &CaseFacts| {
        c.reopened_ms
            .is_some_and(|r| r - c.resolved_ms <= targets.reopen_window_ms)
    };
    let reopened = cases.iter().filter(|c| reopened_case(c)).count() as u64;
    let fcr = cases
        .iter()
        .filter(|c| c.transfers == 0 && !reopened_case(c))
        .count() as u64;
    let handed: Vec<&&CaseFacts> = cases.iter().filter(|c| c.handed_off_ms.is_some()).collect();
    let sla_met = handed
        .iter()
        .filter(|c| {
            matches!((c.first_agent_reply_ms, c.handed_off_ms),
                (Some(r), Some(h)) if r - h <= targets.first_response_ms)
        })
        .count() as u64;
    Summary {
        group: group.to_string(),
        cases: cases.len() as u64,
        bot_only,
        handed_off: cases.len() as u64 - bot_only,
        surveys_sent: sent.len() as u64,
        surveys_answered: csat.len() as u64,
        response_rate: (!sent.is_empty()).then(|| round2(csat.len() as f64 / sent.len() as f64)),
        csat_pct: (!csat.is_empty()).then(|| {
            round2(100.0 * csat.iter().filter(|s| **s >= 4).count() as f64 / csat.len() as f64)
        }),
        csat_avg: avg(&csat).map(round2),
        nps: (!nps.is_empty()).then(|| {
            let promoters = nps.iter().filter(|s| **s >= 9).count() as f64;
            let detractors = nps.iter().filter(|s| **s <= 6).count() as f64;
            round2(100.0 * (promoters - detractors) / nps.len() as f64)
        }),
        ces_avg: avg(&ces).map(round2),
        first_response: spread(first),
        resolution: spread(resolution),
        opened,
        resolution_rate_pct: pct(resolved, opened),
        reopened,
        reopen_rate_pct: pct(reopened, resolved),
        first_contact_resolved: fcr,
        first_contact_resolution_pct: pct(fcr, resolved),
        sla_met,
        sla_cases: handed.len() as u64,
        sla_attainment_pct: pct(sla_met, handed.len() as u64),
    }
}

fn day_of(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).date().to_string())
        .unwrap_or_default()
}

fn group_key(
    by: GroupBy,
    at_ms: i64,
    agent: &Option<String>,
    queue: &Option<String>,
    channel: &str,
    number: &Option<String>,
    tz: &jiff::tz::TimeZone,
) -> String {
    match by {
        GroupBy::Day => day_of(at_ms, tz),
        GroupBy::Agent => agent.clone().unwrap_or_else(|| "bot".into()),
        GroupBy::Queue => queue.clone().unwrap_or_else(|| "none".into()),
        GroupBy::Channel => channel.to_string(),
        GroupBy::Number => number.clone().unwrap_or_else(|| "default".into()),
    }
}

/// Summaries per group, plus the total as `all` first. Resolved cases are
/// grouped by their resolution day, opened ones by their opening day.
pub fn summarize(
    cases: &[CaseFacts],
    opened: &[OpenedFacts],
    group_by: Option<GroupBy>,
    targets: Targets,
    tz: &jiff::tz::TimeZone,
) -> Vec<Summary> {
    let all: Vec<&CaseFacts> = cases.iter().collect();
    let mut out = vec![summarize_group("all", &all, opened.len() as u64, targets)];
    let Some(by) = group_by else { return out };
    let mut groups: BTreeMap<String, (Vec<&CaseFacts>, u64)> = BTreeMap::new();
    for c in cases {
        let key = group_key(
            by,
            c.resolved_ms,
            &c.agent,
            &c.queue,
            &c.channel,
            &c.number,
            tz,
        );
        groups.entry(key).or_default().0.push(c);
    }
    for o in opened {
        let key = group_key(
            by,
            o.opened_ms,
            &o.agent,
            &o.queue,
            &o.channel,
            &o.number,
            tz,
        );
        groups.entry(key).or_default().1 += 1;
    }
    out.extend(
        groups
            .iter()
            .map(|(k, (v, n))| summarize_group(k, v, *n, targets)),
    );
    out
}

/// Parses a date or instant; a bare date means its start (or, for `end`, its end).
pub fn parse_instant(s: &str, tz: &jiff::tz::TimeZone, end: bool) -> Result<i64, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let date: jiff::civil::Date = s
        .parse()
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    let day = if end {
        date.tomorrow().map_err(|e| e.to_string())?
    } else {
        date
    };
    let start = day
        .to_zoned(tz.clone())
        .map_err(|e| e.to_string())?
        .timestamp()
        .as_millisecond();
    Ok(if end { start - 1 } else { start })
}

/// The facts of the cases resolved between two instants (Unix ms, inclusive),
/// with their surveys.
pub async fn case_facts(store: &Store, from_ms: i64, to_ms: i64) -> StoreResult<Vec<CaseFacts>> {
    let ids = store.resolved_between(from_ms, to_ms).await?;
    let convs = store.conversations(&ids).await?;
    let mut out = Vec::with_capacity(convs.len());
    for c in convs {
        out.push(CaseFacts {
            resolved_ms: c.resolved_ms.unwrap_or(0),
            opened_ms: c.opened_ms,
            handed_off_ms: c.handed_off_ms,
            first_agent_reply_ms: c.first_agent_reply_ms,
            agent: c.agent.clone(),
            queue: c.queue.clone(),
            channel: c.channel.as_str().to_string(),
            number: c.number.clone(),
            bot_only: !c.reached_human,
            survey: store.survey(&c.id).await?,
            transfers: c.transfers,
            reopened_ms: c.reopened_ms,
        });
    }
    Ok(out)
}

/// The cases opened between two instants (Unix ms, inclusive).
pub async fn opened_facts(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<OpenedFacts>> {
    let ids = store.opened_between(from_ms, to_ms).await?;
    Ok(store
        .conversations(&ids)
        .await?
        .into_iter()
        .map(|c| OpenedFacts {
            opened_ms: c.opened_ms,
            agent: c.agent.clone(),
            queue: c.queue.clone(),
            channel: c.channel.as_str().to_string(),
            number: c.number.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Channel;
    use crate::survey::Status;

    const MIN: i64 = 60_000;

    fn survey(csat: Option<u8>, nps: Option<u8>, sent: bool) -> Survey {
        Survey {
            case_id: "x".into(),
            channel: Channel::WhatsApp,
            contact_id: "62".into(),
            agent: None,
            queue: None,
            bot_only: false,
            language: "id".into(),
            status: if csat.is_some() {
                Status::Completed
            } else {
                Status::Asked
            },
            step: None,
            reasked: false,
            via: None,
            csat,
            nps,
            ces: None,
            comment: None,
            opened_ms: 0,
            handed_off_ms: None,
            first_agent_reply_ms: None,
            resolved_ms: 0,
            scheduled_ms: 0,
            sent_ms: sent.then_some(1),
            answered_ms: None,
            closed_ms: None,
            number: None,
        }
    }

    fn case(
        agent: &str,
        first_reply_min: Option<i64>,
        resolution_min: i64,
        s: Option<Survey>,
    ) -> CaseFacts {
        CaseFacts {
            resolved_ms: 1_800_000_000_000 + resolution_min * MIN,
            opened_ms: 1_800_000_000_000,
            handed_off_ms: first_reply_min.map(|_| 1_800_000_000_000),
            first_agent_reply_ms: first_reply_min.map(|m| 1_800_000_000_000 + m * MIN),
            agent: (!agent.is_empty()).then(|| agent.to_string()),
            queue: (!agent.is_empty()).then(|| "general".to_string()),
            channel: "whatsapp".into(),
            number: None,
            bot_only: agent.is_empty(),
            survey: s,
            transfers: 0,
            reopened_ms: None,
        }
    }

    const TARGETS: Targets = Targets {
        reopen_window_ms: 3 * 24 * 60 * MIN,
        first_response_ms: 5 * MIN,
    };

    /// Six cases worked out by hand:
    /// CSAT answers 5, 4, 2 → 2 of 3 are 4–5 = 66.67 %, average 11/3 = 3.67.
    /// NPS answers 10, 9, 3 → (2 − 1) / 3 = 33.33.
    /// Surveys sent 4 (a fifth was scheduled but never sent), answered 3 → 0.75.
    /// First responses 2, 4, 10 min → median 240 s, p90 (rank ⌈2.7⌉ = 3) 600 s.
    /// Resolutions 1, 10, 20, 30, 60, 60 min → median 25 min = 1500 s,
    /// p90 (rank ⌈5.4⌉ = 6) 3600 s.
    #[test]
    fn summary_matches_hand_computed_numbers() {
        let cases = vec![
            case("", None, 1, None),
            case("siti", Some(2), 10, Some(survey(Some(5), Some(10), true))),
            case("siti", Some(4), 20, Some(survey(Some(4), Some(9), true))),
            case("budi", Some(10), 30, Some(survey(Some(2), Some(3), true))),
            case("budi", None, 60, Some(survey(None, None, true))),
            case("budi", None, 60, Some(survey(None, None, false))),
        ];
        let tz = jiff::tz::TimeZone::UTC;
        let s = summarize(&cases, &[], Some(GroupBy::Agent), TARGETS, &tz);
        let all = &s[0];
        assert_eq!((all.cases, all.bot_only, all.handed_off), (6, 1, 5));
        assert_eq!((all.surveys_sent, all.surveys_answered), (4, 3));
        assert_eq!(all.response_rate, Some(0.75));
        assert_eq!(all.csat_pct, Some(66.67));
        assert_eq!(all.csat_avg, Some(3.67));
        assert_eq!(all.nps, Some(33.33));
        assert_eq!(
            all.first_response,
            Some(Spread {
                median_s: 240.0,
                p90_s: 600.0
            })
        );
        assert_eq!(
            all.resolution,
            Some(Spread {
                median_s: 1500.0,
                p90_s: 3600.0
            })
        );
        let groups: Vec<&str> = s[1..].iter().map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["bot", "budi", "siti"]);
        let siti = &s[3];
        assert_eq!(
            (siti.cases, siti.csat_pct, siti.nps),
            (2, Some(100.0), Some(100.0))
        );
    }

    /// Five resolved cases and eight opened, worked out by hand:
    /// resolution rate 5/8 = 62.5 %; one reopened within the window (a second
    /// came back too late) → 20 %; first contact: not the transferred one,
    /// not the reopened one → 3/5 = 60 %; SLA (5 min) over the four handed
    /// off: replies after 2 and 4 min meet it, 10 min and none do → 50 %.
    #[test]
    fn service_measures_match_hand_computed_numbers() {
        let mut cases = vec![
            case("", None, 1, None),
            case("siti", Some(2), 10, None),
            case("siti", Some(4), 20, None),
            case("budi", Some(10), 30, None),
            case("budi", None, 60, None),
        ];
        cases[4].handed_off_ms = Some(cases[4].opened_ms);
        cases[1].transfers = 1;
        cases[2].reopened_ms = Some(cases[2].resolved_ms + 60 * MIN);
        cases[3].reopened_ms = Some(cases[3].resolved_ms + 4 * 24 * 60 * MIN);
        let opened: Vec<OpenedFacts> = (0..8)
            .map(|i| OpenedFacts {
                opened_ms: 1_800_000_000_000,
                agent: (i < 3).then(|| "siti".to_string()),
                queue: None,
                channel: "whatsapp".into(),
                number: None,
            })
            .collect();
        let tz = jiff::tz::TimeZone::UTC;
        let s = summarize(&cases, &opened, Some(GroupBy::Agent), TARGETS, &tz);
        let all = &s[0];
        assert_eq!((all.opened, all.resolution_rate_pct), (8, Some(62.5)));
        assert_eq!((all.reopened, all.reopen_rate_pct), (1, Some(20.0)));
        assert_eq!(
            (all.first_contact_resolved, all.first_contact_resolution_pct),
            (3, Some(60.0))
        );
        assert_eq!(
            (all.sla_met, all.sla_cases, all.sla_attainment_pct),
            (2, 4, Some(50.0))
        );
        let siti = s.iter().find(|g| g.group == "siti").unwrap();
        assert_eq!((siti.cases, siti.opened), (2, 3));
        assert_eq!(siti.resolution_rate_pct, Some(66.67));
        let bot = s.iter().find(|g| g.group == "bot").unwrap();
        assert_eq!(
            (bot.cases, bot.opened, bot.sla_attainment_pct),
            (1, 5, None)
        );
    }

    #[test]
    fn dates_parse_in_the_business_zone() {
        let tz = jiff::tz::TimeZone::get("Asia/Jakarta").unwrap();
        let from = parse_instant("2026-11-22", &tz, false).unwrap();
        let to = parse_instant("2026-11-22", &tz, true).unwrap();
        assert_eq!(to - from, 86_400_000 - 1);
        assert_eq!(
            jiff::Timestamp::from_millisecond(from).unwrap().to_string(),
            "2026-11-21T17:00:00Z"
        );
        assert!(parse_instant("22/11/2026", &tz, false).is_err());
    }
}
