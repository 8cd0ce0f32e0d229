//! The API description: an OpenAPI 3.1 document of every `/api/v1` route,
//! served at `GET /api/v1/openapi.json`.
//!
//! It is generated from the code: each handler's `#[utoipa::path]` gives its
//! operation, and [`super::routes_and_document`] registers handler and
//! operation together, so the router and the document cannot drift. This
//! module adds what is common to all operations: the two ways to sign in
//! (bearer token, session cookie), the `Error` body, and the answers every
//! authenticated route may give (401 without valid credentials, 503 when the
//! store is unavailable).
//!
//! The document is public: it describes routes and shapes only (the source
//! is open anyway) and carries no configuration, no secrets and nothing about
//! the deployment, so a client can read it before it has a token.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::client::SESSION_COOKIE;
use crate::http::ErrorBody;

/// Name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";
/// Name of the session-cookie security scheme.
pub const SESSION: &str = "session";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Balas API",
        description = "Customer support on WhatsApp and Instagram: the agent desk, \
users, broadcasts, reports, audit log and customer data requests. Every route needs \
`Authorization: Bearer <token>` or the console's session cookie (changes made with \
the cookie also need its CSRF token in `X-CSRF-Token`), except signing in and this \
document. Errors are `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    security(("bearer" = []), ("session" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "desk", description = "Presence, queue, conversations, search, claims, snoozes, replies, notes, labels, transfers, the supervisors' board and live events"),
        (name = "media", description = "Conversation files, agents' uploads and the typing indicator"),
        (name = "broadcasts", description = "Campaigns and the WhatsApp templates they use (marketers and admins)"),
        (name = "users", description = "People and their API tokens (admins)"),
        (name = "session", description = "Signing in and out of the console"),
        (name = "reports", description = "Summary and surveys (supervisors and admins)"),
        (name = "audit", description = "Who did what (admins)"),
        (name = "contacts", description = "Customer data export and erasure (admins)"),
        (name = "meta", description = "This document"),
    )
)]
struct Base;

/// The document before the routes are added: info, security schemes, tags
/// and the shared schemas.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The console's session cookie, set by POST /api/v1/session. Changes \
             also need the session's CSRF token in the X-CSRF-Token header.",
        ))),
    );
    doc
}

/// A response with the shared `Error` body.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
        .into()
}

/// Adds the answers every authenticated operation may give, and those of
/// the extractors (parameters and bodies that do not parse).
fn add_common_responses(operation: &mut Operation) {
    // Operations that list their own security (signing in, this document)
    // answer without credentials; the others inherit the document's.
    let authenticated = operation.security.is_none();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let body_types: Vec<String> = operation
        .request_body
        .as_ref()
        .map(|b| match b {
            RefOr::T(body) => body.content.keys().cloned().collect(),
            RefOr::Ref(_) => Vec::new(),
        })
        .unwrap_or_default();
    let json_body = body_types.iter().any(|t| t == "application/json");
    let typed_body = json_body || body_types.iter().any(|t| t.starts_with("multipart/"));
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        if !responses.contains_key(status) {
            responses.insert(status.into(), error_response(description));
        }
    };
    if has_parameters || !body_types.is_empty() {
        add("400", "A parameter or the body does not parse");
    }
    if !body_types.is_empty() {
        add("413", "The body is too large");
    }
    if typed_body {
        add("415", "Missing or wrong Content-Type");
    }
    if json_body {
        add("422", "The JSON body does not match the schema");
    }
    if authenticated {
        add("401", "No, unknown, revoked or disabled credentials");
        add("503", "The store is unavailable; retry later");
    }
}

/// The finished document: common responses added to every operation.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            add_common_responses(operation);
        }
    }
    doc
}

/// The document as JSON, made once.
pub fn document_json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        let (_, doc) = super::routes_and_document();
        // Serializing plain maps and strings cannot fail.
        serde_json::to_vec(&doc).unwrap_or_default()
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        document_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::access::accounts::{MAX_CONCURRENT_LIMIT, MIN_PASSWORD_CHARS};

    /// The limits written in the schemas are the ones the code enforces.
    #[test]
    fn documented_limits_match_the_code() {
        let (_, doc) = super::super::routes_and_document();
        let doc = serde_json::to_value(&doc).expect("serializes");
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("NewUser", "max_concurrent"),
            ("UserPatch", "max_concurrent"),
        ] {
            let max = &schemas[schema]["properties"][field]["maximum"];
            assert_eq!(
                max.as_u64(),
                Some(u64::from(MAX_CONCURRENT_LIMIT)),
                "{schema}.{field}"
            );
        }
        for (schema, field) in [("NewUser", "password"), ("NewPassword", "password")] {
            let min = &schemas[schema]["properties"][field]["minLength"];
            assert_eq!(
                min.as_u64(),
                Some(MIN_PASSWORD_CHARS as u64),
                "{schema}.{field}"
            );
        }
    }

    /// The presence body's status lists exactly the statuses the domain
    /// reads (from the mirror in `api::schema`, not a free string).
    #[test]
    fn presence_status_is_the_domain_enum() {
        let (_, doc) = super::super::routes_and_document();
        let doc = serde_json::to_value(&doc).expect("serializes");
        let status = &doc["components"]["schemas"]["PresenceReport"]["properties"]["status"];
        let values: Vec<&str> = status["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(values, ["online", "away", "offline"]);
        for v in values {
            serde_json::from_value::<crate::store::PresenceStatus>(v.into()).expect(v);
        }
    }
}
