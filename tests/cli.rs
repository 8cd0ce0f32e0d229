//! The `balas` commands people type: managing users in the store, config
//! checks, chatting with the bot, printing a report from a running server,
//! testing and explaining the intent rules.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::harness::{Auth, Harness, StoreKind, token};
use common::process::{run, run_with};
use reqwest::Method;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_balas");

/// A config file for CLI runs: the embedded store in `data` (or the given
/// Redis), the repository's rules, plus `extra` TOML.
fn cli_config(dir: &std::path::Path, store: &str, extra: &str) -> std::path::PathBuf {
    let intents = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let file = dir.join("balas.toml");
    std::fs::write(
        &file,
        format!(
            "[store]\n{store}\n\n[intents]\npath = {:?}\n{extra}",
            intents.display().to_string()
        ),
    )
    .unwrap();
    file
}

/// The line after the one starting with `label`, trimmed (how passwords and
/// tokens are printed).
fn printed_after(stdout: &str, label: &str) -> String {
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"));
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("a value after the label")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cli_manages_the_embedded_store_named_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = cli_config(
        dir.path(),
        &format!("data_dir = {:?}", data.display().to_string()),
        "",
    );
    let f = file.to_str().unwrap().to_string();
    let cli = move |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--config", f.as_str()];
        all.extend_from_slice(args);
        run_with(&all, &[], stdin)
    };

    let out = cli(
        &[
            "users",
            "add",
            "--id",
            "dewi",
            "--name",
            "Dewi Lestari",
            "--role",
            "supervisor",
            "--queue",
            "complaints",
        ],
        None,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let password = printed_after(&out.stdout, "Password");
    assert_eq!(password.chars().count(), 20, "{}", out.stdout);
    let repo_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/balas.toml");
    assert!(
        !std::fs::read_to_string(repo_config)
            .unwrap()
            .contains("id = \"dewi\""),
        "users live in the store, not in a config file"
    );

    let listed = cli(&["users", "list"], None);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed.stdout.contains("dewi")
            && listed.stdout.contains("supervisor")
            && listed.stdout.contains("password=set"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(&password));
    // `agents` still works as an alias.
    assert_eq!(cli(&["agents", "list"], None).code, Some(0));

    // Mistakes say what is wrong and exit 2.
    let again = cli(&["users", "add", "--id", "dewi", "--name", "X"], None);
    assert_eq!(again.code, Some(2), "a duplicate id is refused");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad_role = cli(
        &["users", "add", "--id", "x", "--name", "X", "--role", "boss"],
        None,
    );
    assert_eq!(bad_role.code, Some(2));
    assert!(
        bad_role
            .stderr
            .contains("agent, supervisor, marketer or admin"),
        "{}",
        bad_role.stderr
    );
    let short = cli(&["users", "passwd", "dewi"], Some("pendek\n"));
    assert_eq!(short.code, Some(2));
    assert!(short.stderr.contains("too short"), "{}", short.stderr);
    let nobody = cli(&["users", "disable", "nobody"], None);
    assert_eq!(nobody.code, Some(2));
    assert!(
        nobody.stderr.contains("no user with id \"nobody\""),
        "{}",
        nobody.stderr
    );

    let new_password = "kopi susu gula aren 2026";
    let changed = cli(
        &["users", "passwd", "dewi"],
        Some(&format!("{new_password}\n")),
    );
    assert_eq!(changed.code, Some(0), "{}", changed.stderr);
    assert_eq!(cli(&["users", "disable", "dewi"], None).code, Some(0));

    // A server on that store: the disabled user cannot sign in, and the CLI
    // says why it cannot open the store while the server runs.
    let h = Harness::start_with(StoreKind::Embedded, |c| c.store.data_dir = data.clone()).await;
    assert_eq!(h.sign_in("dewi", new_password).await.status, 401);
    let locked = tokio::task::spawn_blocking({
        let cli = cli.clone();
        move || cli(&["users", "enable", "dewi"], None)
    })
    .await
    .unwrap();
    assert_eq!(locked.code, Some(1));
    assert!(
        locked.stderr.contains("in use by a running `balas serve`"),
        "{}",
        locked.stderr
    );
    h.stop().await;

    assert_eq!(cli(&["users", "enable", "dewi"], None).code, Some(0));
    let h = Harness::start_with(StoreKind::Embedded, |c| c.store.data_dir = data.clone()).await;
    assert_eq!(
        h.sign_in("dewi", &password).await.status,
        401,
        "the old password is gone"
    );
    let signed = h.sign_in("dewi", new_password).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!(signed.body["user"]["role"], json!("supervisor"));
    assert_eq!(signed.body["user"]["queues"], json!(["complaints"]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cli_on_redis_takes_effect_on_a_running_server_at_once() {
    let h = Harness::start(StoreKind::redis()).await;
    let StoreKind::Redis(redis) = &h.store_kind else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = cli_config(
        dir.path(),
        &format!("redis_url = {:?}\nkey_prefix = \"t\"", redis.url()),
        "",
    );
    let f = file.to_str().unwrap().to_string();
    let cli = move |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let f = f.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config", f.as_str()];
            all.extend_from_slice(&args);
            run_with(&all, &[], stdin)
        })
    };
    let out = cli(
        vec![
            "users",
            "add",
            "--id",
            "eko",
            "--name",
            "Eko",
            "--password-stdin",
            "--token",
        ],
        Some("rahasia sekali 123\n"),
    )
    .await
    .unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stdout.contains("rahasia"),
        "a typed password is not echoed"
    );
    let token = printed_after(&out.stdout, "API token");
    assert!(token.starts_with("blk_"), "{token}");

    let signed = h.sign_in("eko", "rahasia sekali 123").await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let (status, me, _) = h
        .call(Auth::Bearer(&token), Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!((status, me["id"].clone()), (200, json!("eko")));

    let out = cli(vec!["users", "disable", "eko"], None).await.unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let (status, _, _) = h.call(signed.auth(), Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 401, "the session ended at once");
    let (status, _, _) = h
        .call(Auth::Bearer(&token), Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, 401, "the token stopped working at once");
    h.stop().await;
}

#[test]
fn allow_unsigned_with_an_access_token_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = cli_config(
        dir.path(),
        "data_dir = \"data\"",
        "\n[whatsapp]\nenabled = true\nallow_unsigned = true\naccess_token = \"EAAG-real\"\nphone_number_id = \"1122\"\n",
    );
    let f = file.to_str().unwrap();
    for command in ["check-config", "serve"] {
        let out = run(&["--config", f, command]);
        assert_eq!(out.code, Some(2), "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains("key `whatsapp.allow_unsigned`")
                && out.stderr.contains(&format!("{f}:9")),
            "{command}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("EAAG-real"),
            "the token is not printed"
        );
    }
    // The same key set through the environment names the variable.
    let trial = cli_config(
        dir.path(),
        "data_dir = \"data\"",
        "\n[whatsapp]\nenabled = true\nallow_unsigned = true\n",
    );
    let out = run_with(
        &["--config", trial.to_str().unwrap(), "check-config"],
        &[
            ("BALAS_WHATSAPP__ACCESS_TOKEN", "EAAG-real"),
            ("BALAS_WHATSAPP__PHONE_NUMBER_ID", "1"),
        ],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("whatsapp.allow_unsigned"),
        "{}",
        out.stderr
    );
    let out = run_with(
        &["--config", trial.to_str().unwrap(), "check-config"],
        &[("BALAS_SERVER__LISTEN", "everywhere")],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("balas: configuration error: env BALAS_SERVER__LISTEN:"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_redis_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::process::free_port();
    let file = cli_config(
        dir.path(),
        &format!("redis_url = \"redis://:hunter2-sekret@127.0.0.1:{port}/\""),
        "",
    );
    let out = run(&["--config", file.to_str().unwrap(), "users", "list"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("store unavailable"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2-sekret"), "{}", out.stderr);
    // Nor when the URL comes from the environment and the server cannot start.
    let out = run_with(
        &["--config", file.to_str().unwrap(), "serve"],
        &[
            (
                "BALAS_STORE__REDIS_URL",
                &format!("redis://app:hunter2-sekret@127.0.0.1:{port}/0"),
            ),
            ("BALAS_SERVER__LISTEN", "127.0.0.1:0"),
        ],
        None,
    );
    assert_ne!(out.code, Some(0));
    assert!(!out.stderr.contains("hunter2-sekret"), "{}", out.stderr);
}

#[test]
fn chat_answers_through_the_real_engine() {
    let mut child = Command::new(BIN)
        .args(["chat", "--name", "Rina"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("balas chat starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"halo kak\nbarang saya datang rusak, layarnya pecah\n/quit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bot [greeting]>"), "{stdout}");
    assert!(stdout.contains("bot [complaint]>"), "{stdout}");
    assert!(
        stdout.contains("is now queued"),
        "the complaint is handed off: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_prints_a_table_from_a_running_server() {
    let h = Harness::start(StoreKind::Embedded).await;
    let base = h.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "report",
                "--group-by",
                "agent",
                "--server",
                &base,
                "--token",
                token("sari"),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("group"), "{stdout}");
    assert!(
        stdout.lines().nth(1).is_some_and(|l| l.starts_with("all")),
        "{stdout}"
    );

    // An agent may not read reports: the CLI says so and exits 1.
    let base = h.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["report", "--server", &base, "--token", token("siti")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    h.stop().await;
}

/// A small rule directory taught by examples, for the intent tools.
fn taught_rules(dir: &std::path::Path, extra_refund_examples: &str) {
    let text = format!(
        r#"
[[intent]]
name = "order_status"
label = "Status pesanan"
action = "reply"
reply = "Cek pesanan"
keywords = ["resi"]
examples = [
  "paket saya belum sampai", "pesanan saya kapan dikirim", "kiriman saya belum datang",
  "paketnya sampai mana ya", "where is my order", "kurirnya belum datang", "pesanan belum diterima",
  "min orderan aku blm nyampe", "barang saya kok lama", "kapan barangku diantar",
]

[[intent]]
name = "refund_return"
label = "Retur & refund"
action = "handoff"
queue = "refunds"
reply = "Refund"
examples = [
  "mau refund", "uang saya kembalikan", "minta pengembalian dana", "retur barang ini",
  "i want my money back", "tukar barang dong", "balikin duit saya", "batalkan pesanan saya",
  "refund aja kak", "bisa tukar ukuran?"{extra_refund_examples}
]

[[intent]]
name = "fallback"
action = "reply"
reply = "Maaf"
examples = [
  "lagi apa", "wkwk", "harga emas hari ini", "siapa presiden", "slot gacor", "pinjaman cepat cair",
  "cuaca besok", "test", "kamu umur berapa", "resep rendang",
]
"#
    );
    std::fs::write(dir.join("10-rules.toml"), text).unwrap();
}

#[test]
fn intents_test_prints_json_with_an_outcome_per_message() {
    let dir = tempfile::tempdir().unwrap();
    taught_rules(dir.path(), "");
    // Not in the rule directory: every `*.toml` there is a rule file.
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("data.toml");
    std::fs::write(
        &data,
        "[[example]]\ntext = \"paket saya kok belum sampai ya\"\nintent = \"order_status\"\n\n\
         [[example]]\ntext = \"mau refund aja\"\nintent = \"refund_return\"\n\n\
         [[example]]\ntext = \"slot gacor maxwin\"\nintent = \"none\"\n",
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let out = run(&[
        "intents",
        "test",
        data.to_str().unwrap(),
        "--json",
        "--rules",
        rules,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(json["accuracy"].as_f64().is_some(), "{json}");
    let examples = json["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    for e in examples {
        for field in ["text", "expected", "predicted", "outcome"] {
            assert!(e[field].is_string(), "{field} in {e}");
        }
        assert!(e["confidence"].is_f64(), "{e}");
        let outcome = e["outcome"].as_str().unwrap();
        assert!(["answer", "clarify", "fallback"].contains(&outcome), "{e}");
        if outcome == "fallback" {
            assert_eq!(e["predicted"], "none", "{e}");
        }
    }
    assert_eq!(examples[0]["predicted"], "order_status", "{json}");
    assert_eq!(examples[2]["predicted"], "none", "{json}");

    // Below the minimum accuracy: exit 1, and the text report says why.
    let strict = run(&[
        "intents",
        "test",
        data.to_str().unwrap(),
        "--min-accuracy",
        "1.01",
        "--rules",
        rules,
    ]);
    assert_eq!(strict.code, Some(1), "{}", strict.stderr);
    for part in [
        "accuracy:",
        "confidently wrong:",
        "clarify:",
        "F1",
        "confusion matrix",
        "FAIL: accuracy below",
    ] {
        assert!(strict.stdout.contains(part), "{part}: {}", strict.stdout);
    }
    assert!(
        !strict.stdout.contains("slot gacor"),
        "no message text without --errors: {}",
        strict.stdout
    );
}

#[test]
fn intents_test_cross_validates_the_rule_files_own_examples() {
    let dir = tempfile::tempdir().unwrap();
    taught_rules(dir.path(), "");
    let rules = dir.path().to_str().unwrap();
    let out = run(&["intents", "test", "--cv", "3", "--rules", rules]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("3-fold cross-validation"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("accuracy:"), "{}", out.stdout);
    let json = run(&["intents", "test", "--cv", "3", "--json", "--rules", rules]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["examples"].as_array().unwrap().len(), 30, "{json}");

    let one = run(&["intents", "test", "--cv", "1", "--rules", rules]);
    assert_eq!(one.code, Some(1));
    assert!(one.stderr.contains("at least 2 folds"), "{}", one.stderr);
    let neither = run(&["intents", "test", "--rules", rules]);
    assert_eq!(neither.code, Some(2), "clap refuses: {}", neither.stderr);
    assert!(neither.stderr.contains("<DATASET>"), "{}", neither.stderr);
}

#[test]
fn intents_check_warns_about_examples() {
    let dir = tempfile::tempdir().unwrap();
    // One refund example is also an order example, and refunds are few.
    taught_rules(dir.path(), r#", "paket saya belum sampai""#);
    let out = run(&["intents", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for part in [
        "example `paket saya belum sampai` is also an example of `order_status`",
        "intent `refund_return`: only 11 examples: add at least 20",
        "intent `fallback`",
    ] {
        assert!(out.stdout.contains(part), "{part}: {}", out.stdout);
    }
    assert!(out.stdout.contains("31 examples"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("no keywords or patterns"),
        "examples select an intent too: {}",
        out.stdout
    );
}

#[test]
fn intents_explain_shows_rules_model_numbers_and_the_decision() {
    let out = run(&[
        "intents",
        "explain",
        "halo kak, paket sy blm nyampe, resi JP1234567890",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for part in [
        "normalized: halo kak . paket saya belum sampai . resi jp1234567890",
        "rules (best first):",
        "order_status",
        "keyword `resi`",
        "model (top 3):",
        "combined (top 3):",
        "tracking_number  JP1234567890 (J&T)",
        "decision:   answer `order_status`",
        "why:",
    ] {
        assert!(out.stdout.contains(part), "{part}: {}", out.stdout);
    }
}

/// The Docker image ships `config/production.toml`: it never accepts unsigned
/// webhooks, so without its secrets it does not start (saying which variable
/// to set), and with them it does.
#[test]
fn the_production_config_requires_signed_webhooks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let production = root.join("config/production.toml");
    let text = std::fs::read_to_string(&production).unwrap();
    assert!(!text.contains("allow_unsigned"), "{text}");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY config/production.toml ./config/balas.toml"),
        "the image ships the production config"
    );
    let f = production.to_str().unwrap();
    let out = run(&["--config", f, "check-config"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("whatsapp.app_secret")
            && out.stderr.contains("BALAS_WHATSAPP__APP_SECRET"),
        "{}",
        out.stderr
    );
    let out = run_with(
        &["--config", f, "check-config"],
        &[
            ("BALAS_WHATSAPP__APP_SECRET", "s3cret"),
            ("BALAS_WHATSAPP__VERIFY_TOKEN", "verify"),
            ("BALAS_WHATSAPP__ACCESS_TOKEN", "EAAG"),
            ("BALAS_WHATSAPP__PHONE_NUMBER_ID", "1122"),
        ],
        None,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The trial config of the repository is valid as it is.
    let out = run(&["--config", "config/balas.toml", "check-config"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
