//! The agent console: a plain HTML/CSS/JS (ES modules) single-page app served
//! at `/console/`, with every asset embedded in the binary so it works on a LAN
//! without internet and without a build step.
//!
//! The console signs in with a user name and password (`POST /api/v1/session`)
//! and then talks to `/api/v1` with the HttpOnly session cookie, sending the
//! session's CSRF token with every change. Every response here carries a strict
//! Content-Security-Policy: no inline scripts or styles, nothing from other
//! origins.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::App;

/// The policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; media-src 'self' data:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// The embedded files: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
    ("app.js", JS, include_str!("assets/app.js")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("sse.js", JS, include_str!("assets/sse.js")),
    ("i18n.js", JS, include_str!("assets/i18n.js")),
    ("dom.js", JS, include_str!("assets/dom.js")),
    ("notify.js", JS, include_str!("assets/notify.js")),
    ("csv.js", JS, include_str!("assets/csv.js")),
    ("files.js", JS, include_str!("assets/files.js")),
    ("view-queue.js", JS, include_str!("assets/view-queue.js")),
    ("view-mine.js", JS, include_str!("assets/view-mine.js")),
    (
        "view-conversation.js",
        JS,
        include_str!("assets/view-conversation.js"),
    ),
    (
        "view-reports.js",
        JS,
        include_str!("assets/view-reports.js"),
    ),
    (
        "view-broadcasts.js",
        JS,
        include_str!("assets/view-broadcasts.js"),
    ),
    ("view-users.js", JS, include_str!("assets/view-users.js")),
];

/// `/` (redirect), `/console` (redirect), `/console/` and `/console/{file}`.
pub fn router() -> Router<App> {
    routes()
}

/// The routes over any state (they read none).
fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { with_headers(Redirect::to("/console/").into_response()) }),
        )
        .route(
            "/console",
            get(|| async { with_headers(Redirect::permanent("/console/").into_response()) }),
        )
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        let mut r = (StatusCode::NOT_FOUND, "not found\n").into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return with_headers(r);
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_headers(r)
}

fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> Router {
        routes::<()>()
    }

    async fn get_path(path: &str) -> Response {
        app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn check_security_headers(r: &Response) {
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
    }

    #[tokio::test]
    async fn serves_index_and_assets_with_types_and_policy() {
        for (path, ty) in [
            ("/console/", "text/html; charset=utf-8"),
            ("/console/index.html", "text/html; charset=utf-8"),
            ("/console/app.js", "text/javascript; charset=utf-8"),
            (
                "/console/view-conversation.js",
                "text/javascript; charset=utf-8",
            ),
            ("/console/style.css", "text/css; charset=utf-8"),
            ("/console/favicon.svg", "image/svg+xml"),
        ] {
            let r = get_path(path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], ty, "{path}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
            check_security_headers(&r);
        }
    }

    #[tokio::test]
    async fn unknown_files_are_404_with_policy() {
        for path in [
            "/console/nope.js",
            "/console/..%2Fmod.rs",
            "/console/mod.rs",
        ] {
            let r = get_path(path).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            check_security_headers(&r);
        }
    }

    #[tokio::test]
    async fn root_redirects_to_console() {
        let r = get_path("/").await;
        assert!(r.status().is_redirection());
        assert_eq!(r.headers()[header::LOCATION], "/console/");
        check_security_headers(&r);
    }

    #[test]
    fn every_module_imported_by_the_app_is_embedded() {
        // A module referenced by an import but missing from ASSETS would 404 in
        // the browser; catch it here.
        for (name, _, body) in ASSETS {
            for line in body
                .lines()
                .filter(|l| l.trim_start().starts_with("import ") || l.contains("} from '"))
            {
                if let Some(start) = line.find("'./") {
                    let rest = &line[start + 3..];
                    let file = &rest[..rest.find('\'').unwrap()];
                    assert!(
                        ASSETS.iter().any(|(n, _, _)| *n == file),
                        "{name} imports {file}, which is not embedded"
                    );
                }
            }
        }
    }

    #[test]
    fn no_inline_scripts_or_styles_in_the_page() {
        let index = ASSETS[0].2;
        assert!(
            !index.contains("<script>") && !index.contains("style=") && !index.contains("<style")
        );
        for (name, _, body) in ASSETS {
            assert!(!body.contains("innerHTML"), "{name} uses innerHTML");
        }
    }
}
