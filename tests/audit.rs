//! The audit log, end to end on both stores: sign-ins (failed ones too),
//! sign-outs, user and token changes, the config's bootstrap and every
//! agent action on a conversation are stored with actor, time and address;
//! admins read them (on another process with Redis) newest first, filtered
//! and page by page; nobody else may.

#[macro_use]
mod common;

use std::time::Duration;

use balas::clock::Clock;

use common::harness::{Auth, Harness, StoreKind};
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    every_access_action_is_in_the_audit_log,
    the_audit_log_is_for_admins_and_says_what_is_wrong,
);

const PASSWORD: &str = "kopi susu gula aren";

/// Every entry the filter `query` matches, read page by page with `limit`
/// entries a page.
async fn all_pages(h: &Harness, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut path = format!("/api/v1/audit?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, v) = h.api("root", Method::GET, &path, None).await;
        assert_eq!(status, 200, "{v}");
        out.extend(v["entries"].as_array().expect("entries").iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("the pages never ended");
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

async fn every_access_action_is_in_the_audit_log(store: StoreKind) {
    let h = Harness::start(store).await;
    let other = if h.store_kind.shared() {
        Some(h.second_process().await)
    } else {
        None
    };
    // The other process reads what this one wrote.
    let reader = other.as_ref().unwrap_or(&h);
    let started = h.clock.now_ms();
    h.clock.advance(Duration::from_secs(1));

    let (status, v) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/users",
            Some(json!({"id": "dewi", "name": "Dewi", "role": "agent", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(h.sign_in("dewi", "salah sandi sekali").await.status, 401);
    let dewi = h.sign_in("dewi", PASSWORD).await;
    assert_eq!(dewi.status, 200);
    let (status, token) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/users/dewi/tokens",
            Some(json!({"label": "crm"})),
        )
        .await;
    assert_eq!(status, 201);
    let token_id = token["id"].as_str().unwrap();
    let (status, _) = h
        .api(
            "root",
            Method::DELETE,
            &format!("/api/v1/users/dewi/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let after_users = h.clock.now_ms();
    h.clock.advance(Duration::from_secs(1));

    // A customer reaches the desk; Siti works the case, Sari resolves it.
    h.customer_says(
        "6281234500001",
        "Rina",
        "saya mau bicara dengan customer service",
    )
    .await;
    h.drained().await;
    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", None)
        .await;
    assert_eq!(status, 200, "{conv}");
    let case = conv["id"].as_str().unwrap().to_string();
    let conv_path = format!("/api/v1/conversations/{case}");
    for (path, body) in [
        ("messages", json!({"text": "Halo Kak, saya bantu cek ya."})),
        ("notes", json!({"text": "pelanggan tetap"})),
        ("labels", json!({"add": ["vip"]})),
        ("transfer", json!({"queue": "billing"})),
    ] {
        let (status, v) = h
            .api(
                "siti",
                Method::POST,
                &format!("{conv_path}/{path}"),
                Some(body),
            )
            .await;
        assert!(status < 300, "{path}: {status} {v}");
    }
    let (status, v) = h
        .api("sari", Method::POST, &format!("{conv_path}/resolve"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _, _) = h
        .call(dewi.auth(), Method::DELETE, "/api/v1/session", None)
        .await;
    assert_eq!(status, 204);

    // Everything, newest first, with who, what, when and from where.
    let all = all_pages(reader, "", 1000).await;
    let ours: Vec<&Value> = all.iter().filter(|e| e["actor"] != "config").collect();
    assert_eq!(
        actions(&ours.iter().map(|e| (*e).clone()).collect::<Vec<_>>()),
        [
            "session.sign_out",
            "conversation.resolve",
            "conversation.transfer",
            "conversation.label",
            "conversation.note",
            "conversation.reply",
            "conversation.claim",
            "token.revoke",
            "token.issue",
            "session.sign_in",
            "session.sign_in",
            "user.create",
        ]
    );
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    for e in &ours {
        assert_eq!(e["address"], "127.0.0.1", "{e}");
        assert!(e["at_ms"].as_i64().unwrap() > started, "{e}");
    }
    let by_action = |a: &str| {
        ours.iter()
            .filter(|e| e["action"] == a)
            .map(|e| (*e).clone())
            .collect::<Vec<Value>>()
    };
    let sign_ins = by_action("session.sign_in");
    assert_eq!(
        sign_ins
            .iter()
            .map(|e| (e["actor"].as_str().unwrap(), e["ok"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [("dewi", true), ("dewi", false)]
    );
    assert_eq!(by_action("conversation.claim")[0]["target"], json!(case));
    assert_eq!(by_action("conversation.claim")[0]["actor"], "siti");
    assert_eq!(by_action("conversation.resolve")[0]["actor"], "sari");
    assert_eq!(
        by_action("conversation.transfer")[0]["detail"],
        "queue:billing"
    );
    assert_eq!(by_action("token.issue")[0]["target"], "dewi");
    // Bodies never reach the log.
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["Halo Kak", "pelanggan tetap", PASSWORD, "salah sandi"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
    // The config's [[agents]] were imported at start, by "config".
    let imported: Vec<&str> = all
        .iter()
        .filter(|e| e["actor"] == "config")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(imported, ["user.import"; 5]);

    // Filters: by actor, by action, by time; small pages add up to the same.
    let siti = all_pages(reader, "&actor=siti", 2).await;
    assert_eq!(
        actions(&siti),
        [
            "conversation.transfer",
            "conversation.label",
            "conversation.note",
            "conversation.reply",
            "conversation.claim",
        ]
    );
    let failed_and_ok = all_pages(reader, "&action=session.sign_in&actor=dewi", 1).await;
    assert_eq!(failed_and_ok.len(), 2);
    let window = all_pages(
        reader,
        &format!("&from={}&to={after_users}", started + 1),
        3,
    )
    .await;
    assert_eq!(
        actions(&window),
        [
            "token.revoke",
            "token.issue",
            "session.sign_in",
            "session.sign_in",
            "user.create",
        ]
    );
    for limit in [1, 2, 5] {
        assert_eq!(all_pages(reader, "", limit).await, all, "pages of {limit}");
    }
    let by_target = all_pages(reader, &format!("&target={case}"), 4).await;
    assert_eq!(by_target.len(), 6, "{by_target:?}");
}

async fn the_audit_log_is_for_admins_and_says_what_is_wrong(store: StoreKind) {
    let h = Harness::start(store).await;
    for who in ["siti", "sari", "maya"] {
        let (status, v) = h.api(who, Method::GET, "/api/v1/audit", None).await;
        assert_eq!(
            (status, v["error"]["code"].clone()),
            (403, json!("forbidden")),
            "{who}"
        );
    }
    let (status, _, _) = h
        .call(Auth::Anonymous, Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(status, 401);
    for (query, hint) in [
        ("action=user.delete", "contact.erase"),
        ("limit=0", "1 to 1000"),
        ("limit=abc", "1 to 1000"),
        ("cursor=yesterday", "next_cursor"),
        ("from=22/11/2026", "from"),
        ("from=2026-11-23&to=2026-11-22", "before"),
        ("contact=6281", "<channel>:<id>"),
        ("contact=whatsapp:1&target=x", "not both"),
    ] {
        let (status, v) = h
            .api("root", Method::GET, &format!("/api/v1/audit?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{query}: {message}");
    }
    let (status, v) = h
        .api("root", Method::GET, "/api/v1/audit?limit=1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert!(v["next_cursor"].is_string());
}
