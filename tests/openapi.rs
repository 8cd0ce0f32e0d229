//! The API description (`GET /api/v1/openapi.json`): a valid OpenAPI 3.1
//! document that lists every route of the router with its methods, and a
//! schema-driven fuzz run (schemathesis, from PyPI) against a live server
//! that finds no 5xx, on both stores.
//!
//! `./scripts/test` installs schemathesis into `target/test-tools/schemathesis`
//! (a Python venv pinned by `tests/openapi/requirements.txt`);
//! `BALAS_SCHEMATHESIS` may point at another `schemathesis`, and one on `PATH`
//! is used last. `BALAS_FUZZ_EXAMPLES` (default 15) and `BALAS_FUZZ_SEED`
//! widen or vary the run locally.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::harness::{Harness, StoreKind, token};
use reqwest::Method;
use serde_json::Value;

on_both_stores!(a_fuzz_run_finds_no_server_error);

const OPERATION_KEYS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The generated document, as served.
fn document() -> Value {
    let (_, doc) = balas::api::routes_and_document();
    serde_json::to_value(&doc).expect("document serializes")
}

/// `(path, method)` of every operation, methods in upper case.
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let methods: BTreeSet<String> = OPERATION_KEYS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        out.insert(path.clone(), methods);
    }
    out
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref is a string"));
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Resolves a local JSON pointer (`#/components/schemas/Error`).
fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    doc.pointer(pointer.strip_prefix('#')?)
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi field: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "balas_session");

    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(
            path.starts_with("/api/v1/") || path.starts_with("/media/public/"),
            "{path}"
        );
        let template_params: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in OPERATION_KEYS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().expect(&at);
            assert!(
                operation_ids.insert(id.to_string()),
                "{at}: operationId {id} twice"
            );
            let responses = op["responses"].as_object().expect(&at);
            assert!(!responses.is_empty(), "{at} has no responses");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{at} {status} has no description"
                );
                // Every error answer is the shared `{"error": {...}}` body.
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{at} {status}"
                    );
                }
            }
            let path_params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().expect("parameter name"))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(path_params, template_params, "{at}: path parameters");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{at} has no tag"
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r}");
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// No API route is registered around the document: `routes!` gives a route
/// and its operation together, a plain axum `.route("/api/…")` (or a nested
/// router) would give a route the document does not know.
#[test]
fn no_api_route_bypasses_the_document() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let plain = regex::Regex::new(
        r#"\.(route|route_service|nest|nest_service)\s*\(\s*"/(api|media/public)"#,
    )
    .expect("regex");
    let mut found = Vec::new();
    for file in sources(&src) {
        let text = std::fs::read_to_string(&file).expect("read");
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for m in plain.find_iter(&code) {
            found.push(format!("{}: {}", file.display(), m.as_str()));
        }
    }
    assert!(
        found.is_empty(),
        "register API routes with utoipa_axum's routes!() in src/api/mod.rs, not plain axum: {found:#?}"
    );
}

/// The router and the document agree: for every documented path, a method
/// the router does not take answers 405 with `Allow` listing exactly the
/// documented methods (plus HEAD with GET). A documented route the router
/// lacks would answer 404; a method the router has but the document lacks
/// would appear in `Allow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routed_method_is_documented_and_every_documented_one_routed() {
    let h = Harness::start(StoreKind::Embedded).await;
    let doc = document();
    for (path, documented) in operations(&doc) {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let resp = h
            .http
            .request(Method::TRACE, format!("{}{concrete}", h.base))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 405, "TRACE {path}");
        let allow: BTreeSet<String> = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .expect("Allow header")
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(allow, documented, "{path}: routed vs documented methods");
    }
    // The document is served, without credentials, as generated.
    let resp = h
        .http
        .get(format!("{}/api/v1/openapi.json", h.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/json"))
    );
    let served: Value = resp.json().await.expect("JSON");
    assert_eq!(served, doc);
    h.stop().await;
}

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("BALAS_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools/schemathesis/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("schemathesis");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "schemathesis not found: run ./scripts/test, which installs it, or \
         python3 -m venv target/test-tools/schemathesis && \
         target/test-tools/schemathesis/bin/pip install -r tests/openapi/requirements.txt"
    );
}

/// Operations the fuzz run leaves out, by operationId, and why.
const NOT_FUZZED: &[(&str, &str)] = &[
    // An endless Server-Sent Events stream: every example would wait for the
    // request timeout.
    ("events", "endless stream"),
];

/// What every answer is checked for: all of schemathesis's checks (no 5xx,
/// documented status codes, content types, headers and bodies, invalid input
/// refused, authentication not ignored …) but one.
const CHECKS: &str = "all";

/// The check left out: "a request the schema allows is accepted". The
/// schema cannot say everything the handlers check (a name that is not only
/// spaces, exactly one of `queue` or `agent`, a conversation one owns), and
/// refusing such a request with a 4xx is right.
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

/// The customer whose conversation the fuzz run works on.
const CUSTOMER: &str = "6281234567890";

/// schemathesis's config: the path identifiers of things that exist, so the
/// generated requests reach the handlers' logic instead of stopping at 404.
fn fuzz_config(conversation: &str, broadcast: &str) -> String {
    format!(
        r#"
[[operations]]
include-path-regex = "^/api/v1/conversations/"
parameters = {{ "path.id" = "{conversation}" }}

[[operations]]
include-path-regex = "^/api/v1/broadcasts/"
parameters = {{ "path.id" = "{broadcast}" }}

[[operations]]
include-path-regex = "^/api/v1/users/"
parameters = {{ "path.id" = "budi" }}

[[operations]]
include-path-regex = "^/api/v1/contacts/"
parameters = {{ "path.channel" = "whatsapp", "path.id" = "{CUSTOMER}" }}
"#
    )
}

/// schemathesis, with the admin's token, against a live server holding a
/// conversation, a scheduled broadcast and users: every operation (but
/// [`NOT_FUZZED`]), generated valid and invalid inputs, and no answer may be
/// a 5xx.
async fn a_fuzz_run_finds_no_server_error(store: StoreKind) {
    let h = Harness::start(store).await;
    // Things to list, read and act on.
    h.customer_says(CUSTOMER, "Sari", "saya mau bicara dengan customer service")
        .await;
    h.idle().await;
    let conversation = h.current_case(CUSTOMER).await.expect("a conversation");
    let (status, broadcast) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/broadcasts",
            Some(serde_json::json!({
                "name": "promo", "channel": "whatsapp",
                "message": {"template": {"name": "promo"}},
                "send_at": "2030-01-01T09:00:00+07:00",
            })),
        )
        .await;
    assert_eq!(status, 201, "{broadcast}");
    let broadcast = broadcast["id"].as_str().expect("broadcast id").to_string();
    let examples = std::env::var("BALAS_FUZZ_EXAMPLES").unwrap_or_else(|_| "15".into());
    let seed = std::env::var("BALAS_FUZZ_SEED").unwrap_or_else(|_| "20261130".into());
    let checks = std::env::var("BALAS_FUZZ_CHECKS").unwrap_or_else(|_| CHECKS.into());
    let work = tempfile::tempdir().expect("work dir");
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, fuzz_config(&conversation, &broadcast)).expect("write config");
    let mut cmd = Command::new(schemathesis());
    cmd.arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", h.base))
        .args(["--checks", &checks])
        .args(["--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", &examples])
        .args(["--seed", &seed])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", token("root")))
        .arg("--report-dir")
        .arg(work.path())
        // Hypothesis keeps its example database in the working directory.
        .current_dir(work.path())
        .env("NO_COLOR", "1");
    for (operation, _why) in NOT_FUZZED {
        cmd.args(["--exclude-operation-id", operation]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // The run really exercised the API (not a schema it could not load).
    assert!(stdout.contains("passed"), "{stdout}\n{stderr}");
    // And the fuzzer kept its credentials to the end.
    let (status, _) = h.api("root", Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);
    h.stop().await;
}
