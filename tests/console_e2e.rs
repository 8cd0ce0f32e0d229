//! The agent console in a real headless Chromium, against a real Balas server.
//!
//! Starts Balas in-process (embedded store in a temp dir, the repository's
//! intent rules, a second agent with an API token, WhatsApp templates listed
//! by the Graph API mock, which is WhatsApp's `api_base`), then runs
//! `node tests/console/e2e.mjs`, which drives Chromium through Playwright at
//! 1280×800 and 390×844: sign in, the live queue, claim, reply, rendered
//! canned responses, translated system lines and errors, files, the phone
//! layout (Send tappable at its centre, the contact drawer, no horizontal
//! overflow on any screen), claiming a named chat, presence, transfer from a
//! list, the live supervisor board, search, snooze, reports, users, and
//! broadcasts (semicolon CSV, synced template with preview, quiet hours,
//! truthful progress); see docs/console.md. Screenshots go to
//! `tests/artifacts/` (`UPDATE_DOCS=1`: to `docs/console/`).
//!
//! `console_modules_in_node` runs the console's pure modules' unit tests
//! (`tests/console/unit.mjs`) in Node.
//!
//! Needs Chromium (`/usr/bin/chromium`) and `tests/console/node_modules`;
//! `./scripts/test` installs both. Without them this test fails and says so.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use balas::config::{AgentConfig, CannedConfig, HumanDuration, Role, Secret};
use common::graph_mock::{self, GraphMock};

const TOKEN: &str = "e2e-agent-token-5f0c1d";
const AGENT2_TOKEN: &str = "e2e-agent2-token-9a7b3e";
const WABA: &str = "104857600012345";
const PASSWORD: &str = "e2e sign-in password";
const APP_SECRET: &str = "e2e-app-secret";
const PHONE_NUMBER_ID: &str = "112233445566778";

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn preflight(root: &Path) -> PathBuf {
    let how = "run ./scripts/test (it installs Chromium with apt and runs `npm ci --prefix tests/console`), \
               or by hand: `apt-get install -y chromium && npm ci --prefix tests/console`";
    let browser = chromium().unwrap_or_else(|| {
        panic!("Chromium is not installed (looked for /usr/bin/chromium); {how}")
    });
    assert!(
        root.join("tests/console/node_modules/playwright-core")
            .is_dir(),
        "tests/console/node_modules is missing; {how}"
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` is not on PATH (Node.js 18 or newer is needed for the browser test); {how}"
    );
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let browser = preflight(&root);
    let started = Instant::now();

    let graph = GraphMock::start().await;
    let data = tempfile::tempdir().unwrap();

    let mut config = balas::config::load_from_str("", "test", &[]).expect("default config");
    config.store.data_dir = data.path().to_path_buf();
    config.intents.path = root.join("intents");
    config.workers.poll_interval = HumanDuration::millis(20);
    config.whatsapp.enabled = true;
    config.whatsapp.api_base = graph.base_url().to_string();
    config.whatsapp.access_token = Some(Secret::new("e2e-access-token"));
    config.whatsapp.phone_number_id = PHONE_NUMBER_ID.to_string();
    config.whatsapp.app_secret = Some(Secret::new(APP_SECRET));
    config.whatsapp.business_account_id = WABA.into();
    config.agents = vec![
        AgentConfig {
            id: "siti".into(),
            name: "Siti Aminah".into(),
            role: Role::Admin,
            queues: vec![],
            max_concurrent: 5,
            token_sha256: balas::api::auth::token_hash(TOKEN),
        },
        // A second agent, driven through the API while the admin watches.
        AgentConfig {
            id: "rudi".into(),
            name: "Rudi Hartono".into(),
            role: Role::Agent,
            queues: vec![],
            max_concurrent: 5,
            token_sha256: balas::api::auth::token_hash(AGENT2_TOKEN),
        },
    ];
    // The templates the WhatsApp Business Account has (synced by the console).
    graph.set_templates(vec![
        graph_mock::template(
            "promo_akhir_tahun",
            "id",
            "APPROVED",
            "MARKETING",
            "Halo {{1}}, pesanan {{2}} dapat diskon akhir tahun!",
            &["Lihat promo", "Berhenti"],
        ),
        graph_mock::template("info_baru", "id", "PENDING", "UTILITY", "Info baru", &[]),
    ]);
    config.canned = vec![
        CannedConfig {
            shortcut: "foto".into(),
            title: "Minta foto".into(),
            text: "Mohon kirim foto barangnya ya kak.".into(),
            attachment: None,
        },
        CannedConfig {
            shortcut: "salam".into(),
            title: "Salam pembuka".into(),
            text: "Halo kak {{contact.name}}, kasus {{case.id}} kami tangani ya.".into(),
            attachment: None,
        },
    ];

    let app = balas::app::App::open(config, Arc::new(balas::clock::SystemClock))
        .await
        .expect("open the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = balas::server::start(app, listener).expect("start the server");
    let base = format!("http://{}", running.addr);
    // The config's admin has only a token; they set their first password with it.
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/users/siti/password"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        204,
        "{}",
        res.text().await.unwrap_or_default()
    );

    // The console is served with its security headers.
    let res = reqwest::get(format!("{base}/console/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-security-policy"],
        balas::console::CONTENT_SECURITY_POLICY,
        "the console page must carry the strict CSP"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.text().await.unwrap().contains("/console/app.js"));

    // The photo the customer will send (served by the mock's media endpoints).
    let photo =
        graph.add_whatsapp_media(include_bytes!("data/media/barang-rusak.png"), "image/png");

    let artifacts = root.join("tests/artifacts");
    let screenshot = artifacts.join("console-conversation.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut child = tokio::process::Command::new("node")
        .arg(root.join("tests/console/e2e.mjs"))
        .current_dir(root.join("tests/console"))
        .env("BASE_URL", &base)
        .env("USERNAME", "siti")
        .env("PASSWORD", PASSWORD)
        .env("APP_SECRET", APP_SECRET)
        .env("GRAPH_URL", graph.base_url())
        .env("PHONE_NUMBER_ID", PHONE_NUMBER_ID)
        .env("MEDIA_ID", &photo.id)
        .env("MEDIA_SHA256", &photo.sha256_base64)
        .env("UPLOAD_FILE", root.join("tests/data/media/nota-servis.pdf"))
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &browser)
        .env("AGENT2", "rudi")
        .env("AGENT2_NAME", "Rudi Hartono")
        .env("AGENT2_TOKEN", AGENT2_TOKEN)
        // `UPDATE_DOCS=1 cargo test --test console_e2e` refreshes the
        // screenshots of docs/console.md; otherwise they go to tests/artifacts.
        .env(
            "DOCS_DIR",
            if std::env::var_os("UPDATE_DOCS").is_some() {
                root.join("docs/console")
            } else {
                artifacts.join("docs")
            },
        )
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the browser test did not finish within 120 s")
        .expect("wait for node");

    running.stop().await;
    assert!(
        status.success(),
        "the browser test failed ({status}); see its output above and tests/artifacts/console-failure.png"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    assert!(
        graph.violations().is_empty(),
        "Graph mock violations: {:?}",
        graph.violations()
    );
    let uploads = graph.uploads();
    assert_eq!(uploads.len(), 1, "the agent's file was uploaded once");
    assert_eq!(
        uploads[0].bytes,
        include_bytes!("data/media/nota-servis.pdf"),
        "the uploaded bytes are the agent's file"
    );
    eprintln!(
        "console e2e passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The console's pure modules (strings of both languages, durations, the
/// CSV reader, system lines, quiet hours, template previews) in Node.
#[test]
fn console_modules_in_node() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .arg(root.join("tests/console/unit.mjs"))
        .output()
        .expect("run node (Node.js 18 or newer; ./scripts/test installs it)");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the console unit tests failed");
}
