//! The `balas` commands people type: adding an agent, chatting with the bot,
//! printing a report from a running server.

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
