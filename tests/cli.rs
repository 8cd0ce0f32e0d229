//! The `balas` commands people type: adding an agent, chatting with the bot,
//! printing a report from a running server, testing and explaining the intent
//! rules.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::harness::{Harness, StoreKind, token};
use common::process::run;

const BIN: &str = env!("CARGO_BIN_EXE_balas");

#[test]
fn agents_add_prints_the_token_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("balas.toml");
    std::fs::write(&file, "[intents]\npath = \"intents\"\n").unwrap();
    let file_s = file.to_str().unwrap();
    let out = run(&[
        "agents",
        "add",
        "--id",
        "siti",
        "--name",
        "Siti Aminah",
        "--role",
        "supervisor",
        "--queue",
        "complaints",
        "--file",
        file_s,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let token = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("blk_"))
        .expect("the token is printed")
        .to_string();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token), "the token itself is never stored");
    assert!(
        text.contains(&balas::api::auth::token_hash(&token)),
        "{text}"
    );

    let listed = run(&["--config", file_s, "agents", "list"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed.stdout.contains("siti") && listed.stdout.contains("supervisor"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(&token));

    let again = run(&[
        "--config", file_s, "agents", "add", "--id", "siti", "--name", "X", "--file", file_s,
    ]);
    assert_eq!(again.code, Some(2), "a duplicate id is refused");
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad_role = run(&[
        "agents", "add", "--id", "x", "--name", "X", "--role", "boss", "--file", file_s,
    ]);
    assert_eq!(bad_role.code, Some(2));
    assert!(
        bad_role
            .stderr
            .contains("agent, supervisor, marketer or admin"),
        "{}",
        bad_role.stderr
    );
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
