//! People and access, end to end on both stores: users managed through the API
//! take effect at once (on a second process with Redis), console sign-in with
//! cookie sessions and CSRF tokens, sign-in rate limits, API tokens, and the
//! least-privilege rules (agents see their queues, marketers no customer
//! messages), plus `/metrics` access.

#[macro_use]
mod common;

use std::time::Duration;

use common::harness::{Auth, Harness, METRICS_TOKEN, StoreKind, token};
use reqwest::Method;
use serde_json::{Value, json};

on_both_stores!(
    a_user_created_by_the_api_signs_in_at_once_everywhere,
    disabling_a_user_ends_sessions_and_tokens_at_once,
    agents_see_only_their_queues_and_their_own_conversations,
    marketers_get_no_customer_messages,
    cookie_writes_need_the_csrf_token,
    sign_in_attempts_are_rate_limited_per_user_and_per_address,
    passwords_and_tokens_are_managed_by_admins_and_owners,
    user_management_is_admin_only_and_keeps_an_admin,
    live_events_follow_the_agents_queues,
);

const CALM_COMPLAINT: &str = "barang saya datang rusak, layarnya pecah";
const WANT_HUMAN: &str = "saya mau bicara dengan customer service";
const PASSWORD: &str = "kopi susu gula aren";

// ---- helpers ---------------------------------------------------------------

/// A second process on the same Redis; `None` on the embedded store (one
/// process only), where the same process stands in.
async fn peer(h: &Harness) -> Option<Harness> {
    if h.store_kind.shared() {
        Some(h.second_process().await)
    } else {
        None
    }
}

/// The admin creates a user; returns the body.
async fn create_user(h: &Harness, body: Value) -> Value {
    let (status, v) = h
        .api("root", Method::POST, "/api/v1/users", Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    v
}

/// An agent with a password and the given queues.
async fn agent(h: &Harness, id: &str, queues: &[&str]) -> Value {
    create_user(
        h,
        json!({ "id": id, "name": id.to_uppercase(), "role": "agent", "queues": queues, "password": PASSWORD }),
    )
    .await
}

/// The admin issues an API token to `user`; returns the token.
async fn issue_token(h: &Harness, user: &str) -> (String, String) {
    let (status, v) = h
        .api(
            "root",
            Method::POST,
            &format!("/api/v1/users/{user}/tokens"),
            Some(json!({ "label": "integration" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    (
        v["token"].as_str().expect("token").to_string(),
        v["id"].as_str().expect("id").to_string(),
    )
}

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {v}"))
}

/// A customer writes `text`, which hands them to a queue; returns the case.
async fn hand_off(h: &Harness, who: &str, text: &str) -> String {
    h.customer_says(who, "Rina", text).await;
    h.drained().await;
    let case = h.current_case(who).await.expect("an open case");
    let (status, v) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!((status, v["state"].clone()), (200, json!("queued")), "{v}");
    case
}

// ---- accounts and sign-in ---------------------------------------------------

async fn a_user_created_by_the_api_signs_in_at_once_everywhere(store: StoreKind) {
    let h = Harness::start(store).await;
    let other = peer(&h).await;
    let b = other.as_ref().unwrap_or(&h);

    let created = create_user(
        &h,
        json!({ "id": "dewi", "name": "Dewi Lestari", "role": "agent", "queues": ["complaints"], "password": PASSWORD }),
    )
    .await;
    assert_eq!(created["has_password"], json!(true));
    assert_eq!(created["max_concurrent"], json!(5), "the default");

    // Signed in on the other process, straight away.
    let s = b.sign_in("dewi", PASSWORD).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["user"]["id"], json!("dewi"));
    assert_eq!(s.body["user"]["queues"], json!(["complaints"]));
    assert_eq!(s.csrf().len(), 64);
    let cookie = s.set_cookie.clone().expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a trusted proxy: {cookie}"
    );

    // The cookie works on both processes: the session is in the store.
    for p in [&h, b] {
        let (status, v, _) = p.call(s.auth(), Method::GET, "/api/v1/session", None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (v["user"]["id"].clone(), v["csrf_token"].clone()),
            (json!("dewi"), json!(s.csrf()))
        );
        let (status, me, _) = p.call(s.auth(), Method::GET, "/api/v1/me", None).await;
        assert_eq!((status, me["id"].clone()), (200, json!("dewi")));
    }

    // Wrong password and unknown user get one and the same answer.
    let wrong = b.sign_in("dewi", "kopi susu gula arem").await;
    let unknown = b.sign_in("nobody", PASSWORD).await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(code(&wrong.body), "bad_credentials");
    assert!(wrong.session.is_none() && unknown.session.is_none());
    // Config users without a password cannot sign in with an empty one.
    assert_eq!(b.sign_in("siti", "").await.status, 401);

    // The admin lists everyone, never a hash.
    let (status, list) = h.api("root", Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["budi", "dewi", "maya", "root", "sari", "siti"]);
    let text = list.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("sha256"),
        "{text}"
    );
    // Config users came with their tokens.
    let siti = &list["users"][5];
    assert_eq!(siti["tokens"][0]["label"], json!("from config"));
    if let Some(o) = other {
        o.stop().await;
    }
    h.stop().await;
}

async fn disabling_a_user_ends_sessions_and_tokens_at_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let other = peer(&h).await;
    let b = other.as_ref().unwrap_or(&h);
    agent(&h, "dewi", &[]).await;
    let (tok, _) = issue_token(&h, "dewi").await;
    let s = b.sign_in("dewi", PASSWORD).await;
    assert_eq!(s.status, 200);
    let me = |auth| async move { b.call(auth, Method::GET, "/api/v1/me", None).await.0 };
    assert_eq!(me(s.auth()).await, 200);
    assert_eq!(me(Auth::Bearer(&tok)).await, 200);

    let mut stream = b
        .http
        .get(format!("{}/api/v1/events", b.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let (status, v) = h
        .api(
            "root",
            Method::PATCH,
            "/api/v1/users/dewi",
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!((status, v["disabled"].clone()), (200, json!(true)), "{v}");
    // An open event stream ends within about a second too: events keep
    // coming, and the stream re-checks its credentials before passing one on.
    let ping = json!({ "type": "ping" });
    let ended = async {
        loop {
            let publish = h.app.store().publish_event(&ping);
            let (_, chunk) = tokio::join!(
                publish,
                tokio::time::timeout(Duration::from_millis(100), stream.chunk())
            );
            if let Ok(next) = chunk
                && !matches!(next, Ok(Some(_)))
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the event stream of a disabled user ended");
    // On the other process, at the very next request.
    assert_eq!(me(s.auth()).await, 401, "the session ended");
    assert_eq!(
        me(Auth::Bearer(&tok)).await,
        401,
        "the token stopped working"
    );
    assert_eq!(b.sign_in("dewi", PASSWORD).await.status, 401, "no sign-in");
    let (_, agents) = b.api("siti", Method::GET, "/api/v1/agents", None).await;
    assert!(
        !agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == json!("dewi")),
        "{agents}"
    );

    // Enabled again: the token works again, the ended session does not.
    let (status, _) = h
        .api(
            "root",
            Method::PATCH,
            "/api/v1/users/dewi",
            Some(json!({ "disabled": false })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me(Auth::Bearer(&tok)).await, 200);
    assert_eq!(me(s.auth()).await, 401);
    assert_eq!(b.sign_in("dewi", PASSWORD).await.status, 200);
    if let Some(o) = other {
        o.stop().await;
    }
    h.stop().await;
}

async fn cookie_writes_need_the_csrf_token(store: StoreKind) {
    let h = Harness::start(store).await;
    agent(&h, "dewi", &[]).await;
    let s = h.sign_in("dewi", PASSWORD).await;
    let session = s.session.clone().unwrap();
    let no_csrf = Auth::Cookie {
        session: &session,
        csrf: None,
    };
    let bad_csrf = Auth::Cookie {
        session: &session,
        csrf: Some("0000"),
    };
    let claim = |auth| h.call(auth, Method::POST, "/api/v1/queue/claim", Some(json!({})));
    for auth in [no_csrf, bad_csrf] {
        let (status, v, _) = claim(auth).await;
        assert_eq!((status, code(&v)), (403, "csrf"), "{v}");
    }
    let (status, v, _) = claim(s.auth()).await;
    assert_eq!(status, 204, "nothing waits: {v}");
    // Reading needs no CSRF token.
    let (status, _, _) = h.call(no_csrf, Method::GET, "/api/v1/queue", None).await;
    assert_eq!(status, 200);
    // Bearer tokens need none either (browsers never send them cross-site).
    let (status, _, _) = h
        .call(
            Auth::Bearer(token("siti")),
            Method::POST,
            "/api/v1/queue/claim",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 204);

    // Signing out needs it too, then the session is gone.
    let (status, v, _) = h
        .call(no_csrf, Method::DELETE, "/api/v1/session", None)
        .await;
    assert_eq!((status, code(&v)), (403, "csrf"));
    let (status, _, headers) = h
        .call(s.auth(), Method::DELETE, "/api/v1/session", None)
        .await;
    assert_eq!(status, 204);
    let cleared = headers["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("balas_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, v, _) = h.call(no_csrf, Method::GET, "/api/v1/session", None).await;
    assert_eq!(
        (status, v["user"].clone()),
        (200, Value::Null),
        "signed out: {v}"
    );
    let (status, v, _) = h.call(no_csrf, Method::GET, "/api/v1/me", None).await;
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    // Signing out without a session is harmless.
    let (status, _, _) = h
        .call(Auth::Anonymous, Method::DELETE, "/api/v1/session", None)
        .await;
    assert_eq!(status, 204);
    h.stop().await;
}

async fn sign_in_attempts_are_rate_limited_per_user_and_per_address(store: StoreKind) {
    let h = Harness::start(store).await;
    agent(&h, "dewi", &[]).await;
    agent(&h, "eko", &[]).await;

    // Six wrong passwords for one user at once: five are checked, one is refused.
    let attempts = (0..6).map(|i| {
        let h = &h;
        async move { h.sign_in("dewi", &format!("wrong password {i}")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let limited: Vec<_> = results.iter().filter(|r| r.status == 429).collect();
    assert!(
        !limited.is_empty(),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|r| r.status == 401 || r.status == 429));
    assert_eq!(code(&limited[0].body), "rate_limited");
    let wait: u64 = limited[0]
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    // Even the right password waits now …
    assert_eq!(h.sign_in("dewi", PASSWORD).await.status, 429);
    // … while another user signs in as usual.
    assert_eq!(h.sign_in("eko", PASSWORD).await.status, 200);
    // After the wait, the right password works.
    h.clock.advance(Duration::from_secs(13));
    assert_eq!(h.sign_in("dewi", PASSWORD).await.status, 200);

    // One address trying many user names is stopped too (30 at once).
    let attempts = (0..40).map(|i| {
        let h = &h;
        async move { h.sign_in(&format!("guess{i}"), "password123").await.status }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 10, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // After the wait the refused ones were told, it works again.
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(h.sign_in("eko", PASSWORD).await.status, 200);
    h.stop().await;
}

async fn passwords_and_tokens_are_managed_by_admins_and_owners(store: StoreKind) {
    let h = Harness::start(store).await;
    let other = peer(&h).await;
    let b = other.as_ref().unwrap_or(&h);
    agent(&h, "dewi", &[]).await;
    let s1 = h.sign_in("dewi", PASSWORD).await;
    let s2 = b.sign_in("dewi", PASSWORD).await;
    let path = "/api/v1/users/dewi/password";
    let new = "teh tarik tanpa gula";

    // One's own password needs the current one.
    for body in [
        json!({ "password": new }),
        json!({ "password": new, "current_password": "not it at all" }),
    ] {
        let (status, v, _) = h.call(s1.auth(), Method::POST, path, Some(body)).await;
        assert_eq!((status, code(&v)), (403, "wrong_password"), "{v}");
    }
    let (status, v, _) = h
        .call(
            s1.auth(),
            Method::POST,
            path,
            Some(json!({ "password": "short", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v, _) = h
        .call(
            s1.auth(),
            Method::POST,
            path,
            Some(json!({ "password": new, "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    // This session stays; the other one ended, on every process.
    assert_eq!(
        h.call(s1.auth(), Method::GET, "/api/v1/me", None).await.0,
        200
    );
    assert_eq!(
        b.call(s2.auth(), Method::GET, "/api/v1/me", None).await.0,
        401
    );
    assert_eq!(b.sign_in("dewi", PASSWORD).await.status, 401);
    assert_eq!(b.sign_in("dewi", new).await.status, 200);

    // Not someone else's, and no user management.
    let (status, _, _) = h
        .call(
            s1.auth(),
            Method::POST,
            "/api/v1/users/siti/password",
            Some(json!({ "password": new })),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        h.call(s1.auth(), Method::GET, "/api/v1/users", None)
            .await
            .0,
        403
    );
    assert_eq!(
        h.call(s1.auth(), Method::GET, "/api/v1/users/dewi", None)
            .await
            .0,
        200
    );
    assert_eq!(
        h.call(s1.auth(), Method::GET, "/api/v1/users/siti", None)
            .await
            .0,
        403
    );

    // An admin resets it without the current one: every session ends.
    let (status, _) = h
        .api(
            "root",
            Method::POST,
            path,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        h.call(s1.auth(), Method::GET, "/api/v1/me", None).await.0,
        401
    );

    // A token-only config user sets a first password with their token.
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            "/api/v1/users/siti/password",
            Some(json!({ "password": new })),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(b.sign_in("siti", new).await.status, 200);

    // API tokens: shown once, listed by id, revoked at once everywhere.
    let (tok, id) = issue_token(&h, "dewi").await;
    assert!(tok.starts_with("blk_") && id.starts_with("tok_"));
    let (_, user) = h.api("root", Method::GET, "/api/v1/users/dewi", None).await;
    assert_eq!(user["tokens"][0]["id"], json!(id));
    assert_eq!(user["tokens"][0]["label"], json!("integration"));
    assert!(!user.to_string().contains(&tok));
    assert_eq!(
        b.call(Auth::Bearer(&tok), Method::GET, "/api/v1/me", None)
            .await
            .0,
        200
    );
    let revoke = format!("/api/v1/users/dewi/tokens/{id}");
    assert_eq!(h.api("root", Method::DELETE, &revoke, None).await.0, 204);
    let (status, v, _) = b
        .call(Auth::Bearer(&tok), Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    assert_eq!(h.api("root", Method::DELETE, &revoke, None).await.0, 404);
    // Tokens for nobody are refused.
    let (status, _) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/users/nobody/tokens",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    if let Some(o) = other {
        o.stop().await;
    }
    h.stop().await;
}

async fn user_management_is_admin_only_and_keeps_an_admin(store: StoreKind) {
    let h = Harness::start(store).await;
    let body = json!({ "id": "ani", "name": "Ani", "role": "admin", "password": PASSWORD });
    // Supervisors are not admins.
    for (method, path, b) in [
        (Method::GET, "/api/v1/users", None),
        (Method::POST, "/api/v1/users", Some(body.clone())),
        (
            Method::PATCH,
            "/api/v1/users/siti",
            Some(json!({ "disabled": true })),
        ),
        (Method::POST, "/api/v1/users/siti/tokens", Some(json!({}))),
        (Method::DELETE, "/api/v1/users/siti/tokens/x", None),
        (
            Method::POST,
            "/api/v1/users/siti/password",
            Some(json!({ "password": PASSWORD })),
        ),
    ] {
        let (status, v) = h.api("sari", method.clone(), path, b).await;
        assert_eq!((status, code(&v)), (403, "forbidden"), "{method} {path}");
    }
    // The last admin stays an admin.
    for patch in [json!({ "role": "agent" }), json!({ "disabled": true })] {
        let (status, v) = h
            .api("root", Method::PATCH, "/api/v1/users/root", Some(patch))
            .await;
        assert_eq!((status, code(&v)), (409, "last_admin"), "{v}");
    }
    // Bad input is a clear 400/404/409.
    for (b, status, c) in [
        (json!({ "id": "siti", "name": "X" }), 409, "exists"),
        (
            json!({ "id": "siti aminah", "name": "X" }),
            400,
            "bad_request",
        ),
        (
            json!({ "id": "x", "name": "X", "role": "boss" }),
            422,
            "bad_request",
        ),
        (
            json!({ "id": "x", "name": "X", "max_concurrent": 0 }),
            400,
            "bad_request",
        ),
        (
            json!({ "id": "x", "name": "X", "password": "short" }),
            400,
            "bad_request",
        ),
        (
            json!({ "id": "x", "name": "X", "admin": true }),
            422,
            "bad_request",
        ),
        (json!({ "id": "x", "name": " " }), 400, "bad_request"),
    ] {
        let (got, v) = h
            .api("root", Method::POST, "/api/v1/users", Some(b.clone()))
            .await;
        assert_eq!((got, code(&v)), (status, c), "{b} → {v}");
    }
    let (status, v) = h
        .api(
            "root",
            Method::PATCH,
            "/api/v1/users/nobody",
            Some(json!({ "name": "N" })),
        )
        .await;
    assert_eq!((status, code(&v)), (404, "not_found"));

    // With a second admin, the first may step down.
    create_user(&h, body).await;
    let (status, v) = h
        .api(
            "root",
            Method::PATCH,
            "/api/v1/users/root",
            Some(json!({ "role": "supervisor" })),
        )
        .await;
    assert_eq!((status, v["role"].clone()), (200, json!("supervisor")));
    let (status, _) = h.api("root", Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 403, "the change applies to the very next request");

    // Changes to an agent apply at once to what they may take.
    let ani = h.sign_in("ani", PASSWORD).await;
    let (status, v, _) = h
        .call(
            ani.auth(),
            Method::PATCH,
            "/api/v1/users/siti",
            Some(json!({ "queues": ["complaints"], "max_concurrent": 1, "name": "Siti A." })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, me) = h.api("siti", Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        (
            me["queues"].clone(),
            me["max_concurrent"].clone(),
            me["name"].clone()
        ),
        (json!(["complaints"]), json!(1), json!("Siti A."))
    );
    h.stop().await;
}

// ---- least privilege -------------------------------------------------------

async fn agents_see_only_their_queues_and_their_own_conversations(store: StoreKind) {
    let h = Harness::start(store).await;
    agent(&h, "dewi", &["general"]).await;
    let (dewi, _) = issue_token(&h, "dewi").await;
    let complaint = hand_off(&h, "6281500000001", CALM_COMPLAINT).await;
    let general = hand_off(&h, "6281500000002", WANT_HUMAN).await;
    let as_dewi = |method: Method, path: String, body: Option<Value>| {
        let dewi = dewi.clone();
        let h = &h;
        async move {
            let (status, v, _) = h.call(Auth::Bearer(&dewi), method, &path, body).await;
            (status, v)
        }
    };

    // Another queue's conversation does not exist for her.
    let c = |suffix: &str| format!("/api/v1/conversations/{complaint}{suffix}");
    for (method, path, body) in [
        (Method::GET, c(""), None),
        (Method::POST, c("/notes"), Some(json!({ "text": "n" }))),
        (Method::POST, c("/labels"), Some(json!({ "add": ["x"] }))),
        (Method::POST, c("/messages"), Some(json!({ "text": "hi" }))),
        (Method::POST, c("/resolve"), None),
        (
            Method::POST,
            c("/transfer"),
            Some(json!({ "queue": "general" })),
        ),
        (
            Method::GET,
            format!("/api/v1/canned?conversation={complaint}"),
            None,
        ),
    ] {
        let (status, v) = as_dewi(method.clone(), path.clone(), body).await;
        assert_eq!(
            (status, code(&v)),
            (404, "not_found"),
            "{method} {path}: {v}"
        );
    }
    // Her queue's conversation does.
    let (status, _) = as_dewi(
        Method::GET,
        format!("/api/v1/conversations/{general}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = as_dewi(Method::GET, "/api/v1/conversations".into(), None).await;
    let ids: Vec<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [general.as_str()]);
    let (_, queue) = as_dewi(Method::GET, "/api/v1/queue".into(), None).await;
    let names: Vec<&String> = queue["queues"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["general"], "{queue}");
    // Nothing from the agents' own store writes either.
    let contact = h
        .app
        .store()
        .contact(balas::channels::Channel::WhatsApp, "6281500000001")
        .await
        .unwrap()
        .unwrap();
    assert!(contact.notes.is_empty() && contact.labels.is_empty());

    // An agent of every queue sees both; a supervisor may hand it to her,
    // and then it is hers to see.
    assert_eq!(h.api("siti", Method::GET, &c(""), None).await.0, 200);
    let (status, _, _) = h
        .call(
            Auth::Bearer(&dewi),
            Method::PUT,
            "/api/v1/me/presence",
            Some(json!({ "status": "online" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = h
        .api(
            "sari",
            Method::POST,
            &c("/transfer"),
            Some(json!({ "agent": "dewi" })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = as_dewi(Method::GET, c(""), None).await;
    assert_eq!((status, v["agent"].clone()), (200, json!("dewi")));
    let (status, _) = as_dewi(Method::POST, c("/notes"), Some(json!({ "text": "dicek" }))).await;
    assert_eq!(status, 201);
    // Her claim takes only from her queue.
    let (status, v) = as_dewi(Method::POST, "/api/v1/queue/claim".into(), Some(json!({}))).await;
    assert_eq!((status, v["id"].clone()), (200, json!(general)));
    h.stop().await;
}

async fn marketers_get_no_customer_messages(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281500000003", CALM_COMPLAINT).await;
    create_user(
        &h,
        json!({ "id": "mira", "name": "Mira", "role": "marketer", "password": PASSWORD }),
    )
    .await;
    let s = h.sign_in("mira", PASSWORD).await;
    for auth in [Auth::Bearer(token("maya")), s.auth()] {
        for path in [
            "/api/v1/events".to_string(),
            format!("/api/v1/conversations/{case}"),
            "/api/v1/conversations".to_string(),
            "/api/v1/queue".to_string(),
            "/api/v1/reports/surveys.csv".to_string(),
        ] {
            let (status, v, _) = h.call(auth, Method::GET, &path, None).await;
            assert_eq!((status, code(&v)), (403, "forbidden"), "{path}: {v}");
        }
        // Their own work is open to them.
        let (status, _, _) = h.call(auth, Method::GET, "/api/v1/broadcasts", None).await;
        assert_eq!(status, 200);
    }
    h.stop().await;
}

/// Reads an event stream until an event of `kind` about `case`; returns every
/// event read so far (in order).
async fn read_until(
    resp: &mut reqwest::Response,
    buf: &mut String,
    kind: &str,
    case: &str,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut events = Vec::new();
        for block in buf.split("\n\n") {
            let (mut event, mut data) = (None, None);
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(d.trim()).ok();
                }
            }
            if let Some(d) = data {
                let done = event.as_deref() == Some(kind) && d["conversation_id"] == json!(case);
                events.push(d);
                if done {
                    return events;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event for {case}; got:\n{buf}"))
            .expect("stream")
            .expect("stream still open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn live_events_follow_the_agents_queues(store: StoreKind) {
    let h = Harness::start(store).await;
    agent(&h, "dewi", &["general"]).await;
    let (dewi, _) = issue_token(&h, "dewi").await;
    let open = |tok: String| {
        let h = &h;
        async move {
            let resp = h
                .http
                .get(format!("{}/api/v1/events", h.base))
                .bearer_auth(tok)
                .send()
                .await
                .expect("events");
            assert_eq!(resp.status(), 200);
            resp
        }
    };
    let mut on_dewi = open(dewi).await;
    let mut on_siti = open(token("siti").to_string()).await;
    let complaint = hand_off(&h, "6281500000004", CALM_COMPLAINT).await;
    let general = hand_off(&h, "6281500000005", WANT_HUMAN).await;

    let mut seen = String::new();
    let siti = read_until(&mut on_siti, &mut seen, "handoff", &general).await;
    assert!(
        siti.iter()
            .any(|e| e["conversation_id"] == json!(complaint)),
        "an agent of every queue sees the complaint"
    );
    let mut seen = String::new();
    let events = read_until(&mut on_dewi, &mut seen, "handoff", &general).await;
    assert!(
        events
            .iter()
            .all(|e| e["conversation_id"] != json!(complaint)),
        "nothing about another queue's conversation (not even its outbound messages): {events:?}"
    );
    drop((on_dewi, on_siti));
    h.stop().await;
}

// ---- cookies behind a proxy, metrics --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_when_a_trusted_proxy_says_https() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.server.trusted_proxies = vec![balas::config::IpRange::parse("127.0.0.1").unwrap()];
    })
    .await;
    agent(&h, "dewi", &[]).await;
    let sign_in = |proto: Option<&'static str>| {
        let h = &h;
        async move {
            let mut req = h
                .http
                .post(format!("{}/api/v1/session", h.base))
                .json(&json!({ "username": "dewi", "password": PASSWORD }));
            if let Some(p) = proto {
                req = req.header("x-forwarded-proto", p);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.headers()["set-cookie"].to_str().unwrap().to_string()
        }
    };
    assert!(sign_in(Some("https")).await.contains("; Secure"));
    assert!(!sign_in(Some("http")).await.contains("Secure"));
    assert!(!sign_in(None).await.contains("Secure"));
    h.stop().await;

    // From an untrusted peer the header means nothing; `always` means always.
    for (always, expected) in [(false, false), (true, true)] {
        let h = Harness::start_with(StoreKind::Embedded, |c| {
            if always {
                c.auth.secure_cookie = balas::config::SecureCookie::Always;
            }
        })
        .await;
        agent(&h, "dewi", &[]).await;
        let resp = h
            .http
            .post(format!("{}/api/v1/session", h.base))
            .header("x-forwarded-proto", "https")
            .json(&json!({ "username": "dewi", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        assert_eq!(cookie.contains("; Secure"), expected, "{cookie}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_or_a_private_address() {
    let h = Harness::start(StoreKind::Embedded).await;
    let client = h.http.clone();
    let get = |url: String, token: Option<&'static str>| {
        let http = client.clone();
        async move {
            let mut req = http.get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let url = format!("{}/metrics", h.base);
    assert_eq!(get(url.clone(), None).await.0, 401);
    assert_eq!(get(url.clone(), Some("guess")).await.0, 401);
    let (status, page) = get(url.clone(), Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(page.contains("balas_jobs_pending"), "{page}");
    h.stop().await;

    // Without a token, /metrics is closed and says how to open it.
    let h = Harness::start_with(StoreKind::Embedded, |c| c.server.metrics_token = None).await;
    let (status, body) = get(format!("{}/metrics", h.base), None).await;
    assert_eq!(status, 401);
    assert!(
        body.contains("server.metrics_token") && body.contains("server.metrics_listen"),
        "{body}"
    );
    h.stop().await;

    // On a separate (private) address it is served there only.
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.server.metrics_token = None;
        c.server.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let private = h.metrics_addr().expect("a metrics address");
    let (status, page) = get(format!("http://{private}/metrics"), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("balas_jobs_pending"));
    assert_eq!(
        get(format!("http://{private}/api/v1/me"), None).await.0,
        404
    );
    assert_eq!(get(format!("{}/metrics", h.base), None).await.0, 404);
    h.stop().await;
}
