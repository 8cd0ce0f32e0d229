//! `/api/v1/reports`: the summary supervisors read and the surveys as CSV.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::api::auth::Caller;
use crate::app::App;
use crate::config::Role;
use crate::http::ApiError;
use crate::reports::{self, CaseFacts, GroupBy, Summary, Targets};

/// `from`/`to` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Start: `YYYY-MM-DD` (business time zone) or RFC 3339. Default: 30 days ago.
    pub from: Option<String>,
    /// End (inclusive day, or instant). Default: now.
    pub to: Option<String>,
    /// `day`, `agent`, `queue`, `channel` or `number`.
    #[param(schema_with = super::schema::group_by)]
    pub group_by: Option<GroupBy>,
    /// Only cases of this business number or account (WhatsApp
    /// `phone_number_id`, Instagram account id).
    pub number: Option<String>,
}

/// The range a request asks for, and the facts of the cases resolved in it.
async fn facts(app: &App, q: &RangeQuery) -> Result<(i64, i64, Vec<CaseFacts>), ApiError> {
    let tz = app.config().business_hours.timezone.zone().clone();
    let now = app.store().now_ms();
    let from = match &q.from {
        Some(s) => reports::parse_instant(s, &tz, false).map_err(ApiError::bad_request)?,
        None => now - 30 * 86_400_000,
    };
    let to = match &q.to {
        Some(s) => reports::parse_instant(s, &tz, true).map_err(ApiError::bad_request)?,
        None => now,
    };
    if to < from {
        return Err(ApiError::bad_request("`to` is before `from`"));
    }
    let mut out = reports::case_facts(app.store(), from, to).await?;
    if let Some(number) = &q.number {
        out.retain(|c| c.number.as_deref() == Some(number.as_str()));
    }
    Ok((from, to, out))
}

/// The summaries a request asks for: the total first, then the groups.
async fn summaries(app: &App, q: &RangeQuery) -> Result<(i64, i64, Vec<Summary>), ApiError> {
    let (from, to, cases) = facts(app, q).await?;
    let mut opened = reports::opened_facts(app.store(), from, to).await?;
    if let Some(number) = &q.number {
        opened.retain(|o| o.number.as_deref() == Some(number.as_str()));
    }
    let tz = app.config().business_hours.timezone.zone().clone();
    let targets = Targets {
        reopen_window_ms: app.config().cases.reopen_window.as_millis_i64(),
        first_response_ms: app.config().handoff.first_response_target.as_millis_i64(),
    };
    Ok((
        from,
        to,
        reports::summarize(&cases, &opened, q.group_by, targets, &tz),
    ))
}

/// `GET /api/v1/reports/summary?from=&to=&group_by=&number=`
#[utoipa::path(get, path = "/api/v1/reports/summary", operation_id = "report_summary", tag = "reports",
    params(RangeQuery),
    responses(
        (status = 200, description = "`{from_ms, to_ms, group_by, first_response_target_s, reopen_window_s, total, groups}`", body = Object),
        (status = 400, description = "Invalid range", body = crate::http::ErrorBody),
        (status = 403, description = "Not a supervisor or admin", body = crate::http::ErrorBody),
    ))]
pub async fn summary(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<RangeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Supervisor])?;
    let (from, to, groups) = summaries(&app, &q).await?;
    Ok(Json(serde_json::json!({
        "from_ms": from, "to_ms": to, "group_by": q.group_by,
        "first_response_target_s": app.config().handoff.first_response_target.get().as_secs(),
        "reopen_window_s": app.config().cases.reopen_window.get().as_secs(),
        "total": groups[0], "groups": &groups[1..],
    })))
}

/// `GET /api/v1/reports/summary.csv?from=&to=&group_by=&number=`: the same numbers,
/// one row per group (the total first, as `all`).
#[utoipa::path(get, path = "/api/v1/reports/summary.csv", operation_id = "report_summary_csv", tag = "reports",
    params(RangeQuery),
    responses(
        (status = 200, description = "One row per group, the total first (as `all`)", body = String, content_type = "text/csv"),
        (status = 400, description = "Invalid range", body = crate::http::ErrorBody),
        (status = 403, description = "Not a supervisor or admin", body = crate::http::ErrorBody),
    ))]
pub async fn summary_csv(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Supervisor])?;
    let (_, _, groups) = summaries(&app, &q).await?;
    let to_csv_err = |e: csv::Error| ApiError::bad_request(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "group",
        "opened",
        "resolved",
        "resolution_rate_pct",
        "reopened",
        "reopen_rate_pct",
        "first_contact_resolution_pct",
        "sla_met",
        "sla_cases",
        "sla_attainment_pct",
        "bot_only",
        "handed_off",
        "surveys_sent",
        "surveys_answered",
        "csat_pct",
        "nps",
        "first_response_median_s",
        "first_response_p90_s",
        "resolution_median_s",
        "resolution_p90_s",
    ])
    .map_err(to_csv_err)?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for g in &groups {
        w.write_record([
            crate::http::csv_cell(&g.group).into_owned(),
            g.opened.to_string(),
            g.cases.to_string(),
            opt(g.resolution_rate_pct),
            g.reopened.to_string(),
            opt(g.reopen_rate_pct),
            opt(g.first_contact_resolution_pct),
            g.sla_met.to_string(),
            g.sla_cases.to_string(),
            opt(g.sla_attainment_pct),
            g.bot_only.to_string(),
            g.handed_off.to_string(),
            g.surveys_sent.to_string(),
            g.surveys_answered.to_string(),
            opt(g.csat_pct),
            opt(g.nps),
            opt(g.first_response.map(|s| s.median_s)),
            opt(g.first_response.map(|s| s.p90_s)),
            opt(g.resolution.map(|s| s.median_s)),
            opt(g.resolution.map(|s| s.p90_s)),
        ])
        .map_err(to_csv_err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(crate::http::csv_attachment("report.csv", body))
}

/// `GET /api/v1/reports/surveys.csv?from=&to=&number=`: one row per survey.
#[utoipa::path(get, path = "/api/v1/reports/surveys.csv", operation_id = "surveys_csv", tag = "reports",
    params(RangeQuery),
    responses(
        (status = 200, description = "One row per survey", body = String, content_type = "text/csv"),
        (status = 400, description = "Invalid range", body = crate::http::ErrorBody),
        (status = 403, description = "Not a supervisor or admin", body = crate::http::ErrorBody),
    ))]
pub async fn surveys_csv(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Supervisor])?;
    let (from, to, _) = facts(
        &app,
        &RangeQuery {
            from: q.from.clone(),
            to: q.to.clone(),
            group_by: None,
            number: q.number.clone(),
        },
    )
    .await?;
    let mut surveys = app.store().surveys_between(from, to).await?;
    if let Some(number) = &q.number {
        surveys.retain(|s| s.number.as_deref() == Some(number.as_str()));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let iso = |ms: Option<i64>| {
        ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let opt = |v: Option<u8>| v.map(|x| x.to_string()).unwrap_or_default();
    let header = [
        "case_id",
        "channel",
        "contact_id",
        "agent",
        "queue",
        "number",
        "bot_only",
        "status",
        "via",
        "csat",
        "nps",
        "ces",
        "comment",
        "resolved_at",
        "sent_at",
        "answered_at",
        "first_response_s",
        "resolution_s",
    ];
    let to_csv_err = |e: csv::Error| ApiError::bad_request(e.to_string());
    w.write_record(header).map_err(to_csv_err)?;
    for s in surveys {
        let first = match (s.first_agent_reply_ms, s.handed_off_ms) {
            (Some(a), Some(b)) => ((a - b) / 1000).to_string(),
            _ => String::new(),
        };
        // Text that came from outside is neutralised against spreadsheet formulas.
        let cell = crate::http::csv_cell;
        w.write_record([
            s.case_id.as_str(),
            s.channel.as_str(),
            &cell(&s.contact_id),
            &cell(s.agent.as_deref().unwrap_or("")),
            &cell(s.queue.as_deref().unwrap_or("")),
            &cell(s.number.as_deref().unwrap_or("")),
            if s.bot_only { "true" } else { "false" },
            s.status.as_str(),
            &cell(s.via.as_deref().unwrap_or("")),
            &opt(s.csat),
            &opt(s.nps),
            &opt(s.ces),
            &cell(s.comment.as_deref().unwrap_or("")),
            &iso(Some(s.resolved_ms)),
            &iso(s.sent_ms),
            &iso(s.answered_ms),
            &first,
            &((s.resolved_ms - s.opened_ms) / 1000).to_string(),
        ])
        .map_err(to_csv_err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(crate::http::csv_attachment("surveys.csv", body))
}
