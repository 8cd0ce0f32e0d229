//! End to end through HTTP: signed webhooks in, the Graph API mock out, agents
//! through the API — on both store backends.

mod common;

use common::harness::{Harness, StoreKind};
use reqwest::Method;
use serde_json::json;

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::Embedded).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::redis()).await })*
        }
    };
}

on_both_stores!(greeting_gets_a_reply, complaint_goes_to_an_agent_and_back);

async fn greeting_gets_a_reply(store: StoreKind) {
    let h = Harness::start(store).await;
    h.customer_says("6281200000001", "Rina", "halo kak").await;
    let texts = h.wait_texts_to("6281200000001", 1).await;
    assert!(!texts[0].is_empty());
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn complaint_goes_to_an_agent_and_back(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200000002";
    h.customer_says(who, "Budi", "barang saya datang rusak, layarnya pecah")
        .await;
    let texts = h.wait_texts_to(who, 1).await;
    assert!(
        texts[0].contains('1'),
        "tells the position in line: {}",
        texts[0]
    );
    let case = h.current_case(who).await.expect("a case");

    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["id"], json!(case));
    assert_eq!(conv["state"], json!("assigned"));

    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Mohon maaf Kak, kami kirim pengganti hari ini."})),
        )
        .await;
    assert_eq!(status, 202);
    let texts = h.wait_texts_to(who, 2).await;
    assert_eq!(texts[1], "Mohon maaf Kak, kami kirim pengganti hari ini.");

    // The customer's next message goes to the agent, not the bot.
    h.customer_says(who, "Budi", "halo kak, terima kasih").await;
    h.until("the message reaches the transcript", || async {
        let (_, c) = h
            .api(
                "siti",
                Method::GET,
                &format!("/api/v1/conversations/{case}"),
                None,
            )
            .await;
        c["transcript"].as_array().is_some_and(|t| {
            t.iter()
                .any(|e| e["text"] == json!("halo kak, terima kasih"))
        })
    })
    .await;
    assert_eq!(h.texts_to(who).len(), 2, "the bot stayed silent");

    let (status, conv) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["state"], json!("resolved"));

    h.customer_says(who, "Budi", "halo").await;
    h.wait_texts_to(who, 3).await;
    let new_case = h.current_case(who).await.expect("a new case");
    assert_ne!(new_case, case);
    h.stop().await;
}
