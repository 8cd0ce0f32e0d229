//! Shared HTTP pieces: the JSON error body every route answers with.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The body of every error answer: `{"error": {"code": ..., "message": ...}}`.
/// The API description's `Error` schema is derived from this very type.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`bad_request`, `not_found`, `unauthorized` …).
    pub code: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

/// `{"error": {"code": ..., "message": ...}}` with `status`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
        },
    };
    (status, Json(body)).into_response()
}

/// The stable code of an error status, for answers axum makes itself.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Largest plain-text error body [`json_errors`] rewraps.
const PLAIN_ERROR_MAX: usize = 16 * 1024;

/// Middleware (for `axum::middleware::map_response`): an error answer that is
/// not JSON (an extractor's rejection, such as a query string or path that
/// does not parse, or a body over the limit) becomes the usual
/// `{"error": {...}}` with the same status and its text as the message, so
/// every error of the API has one shape whatever produced it.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, PLAIN_ERROR_MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = json_error(status, code_of(status), &message);
    // Keep what the original answer told the client besides its body
    // (`Allow`, `Retry-After` …).
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A CSV file download.
pub fn csv_attachment(filename: &str, body: Vec<u8>) -> Response {
    (
        [
            ("content-type", "text/csv; charset=utf-8".to_string()),
            (
                "content-disposition",
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A CSV cell that a spreadsheet will show as text: a value starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula
/// (CSV injection), so it gets a leading `'`. Use it for every cell whose text
/// came from outside (customers, agents, uploads).
pub fn csv_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// An error a handler returns; renders as [`json_error`].
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 for a missing thing.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status, self.code, &self.message)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store error while answering an API request");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable; retry later",
        )
    }
}

/// A JSON request body whose rejections (bad JSON, wrong fields, missing
/// `Content-Type`) answer in the same `{"error": …}` shape as everything else,
/// instead of axum's plain-text bodies. Every request body of the API is a
/// JSON object; an array is refused (see [`from_json`]).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    body_error(rejection.status(), rejection.body_text())
}

fn body_error(status: StatusCode, message: String) -> ApiError {
    let code = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "bad_request",
    };
    ApiError::new(status, code, message)
}

/// A JSON request body kept as bytes, for a handler that reads a large body in
/// passes instead of deserializing it whole (see [`from_json`]). Refuses a
/// missing or other `Content-Type` and an oversized body like [`JsonBody`].
#[derive(Debug)]
pub struct JsonBytes(pub axum::body::Bytes);

/// `Content-Type: application/json` (or `application/…+json`), as axum's `Json` wants it.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        json_bytes(req, state).await.map(JsonBytes)
    }
}

/// The body of a request that says it is JSON, as bytes.
async fn json_bytes<S: Send + Sync>(
    req: axum::extract::Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(json_rejection(
            axum::extract::rejection::MissingJsonContentType::default().into(),
        ));
    }
    <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(req, state)
        .await
        .map_err(|e| body_error(e.status(), e.body_text()))
}

/// Deserializes a request body (a [`JsonBytes`], or a [`JsonBody`]'s),
/// answering errors as [`JsonBody`] does. The body must be a JSON object:
/// serde would otherwise read an array as a struct's fields in order, so
/// `[]` or `["x"]` would pass for `{}` or `{"label": "x"}`.
pub fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
            "the body must be a JSON object, not an array",
        ));
    }
    Json::<T>::from_bytes(body)
        .map(|Json(v)| v)
        .map_err(json_rejection)
}

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        from_json(&bytes).map(JsonBody)
    }
}

impl<T, S> axum::extract::OptionalFromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        // As axum's `Json`: no `Content-Type` at all means no body.
        if req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
        {
            return Ok(None);
        }
        let bytes = json_bytes(req, state).await?;
        from_json(&bytes).map(|v| Some(JsonBody(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Labelled {
        #[serde(default)]
        label: String,
    }

    #[test]
    fn bodies_are_objects_never_arrays() {
        assert_eq!(
            from_json::<Labelled>(b"{\"label\": \"x\"}").unwrap().label,
            "x"
        );
        assert_eq!(from_json::<Labelled>(b"{}").unwrap().label, "");
        for array in [&b"[]"[..], b" [\"x\"]", b"\n[1]"] {
            let e = from_json::<Labelled>(array).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(
            from_json::<Labelled>(b"{").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn formulas_are_neutralised() {
        for (raw, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+62812", "'+62812"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("puas sekali", "puas sekali"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_cell(raw), shown, "{raw:?}");
        }
    }
}
