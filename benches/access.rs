//! What access control costs: an Argon2id password hash and check (paid once
//! per sign-in, never per request), and recognising a caller on every request
//! (an API token or a session cookie: two store reads on the embedded store).
//!
//! Run: `cargo bench --bench access -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use balas::access::accounts::{self, NewUser};
use balas::access::{secrets, sessions};
use balas::clock::SystemClock;
use balas::config::Role;
use balas::store::Store;
use balas::store::embedded::EmbeddedBackend;
use criterion::{Criterion, criterion_group, criterion_main};

const PASSWORD: &str = "kopi susu gula aren";

fn passwords(c: &mut Criterion) {
    let mut g = c.benchmark_group("password");
    g.sample_size(20);
    g.bench_function("argon2id_hash", |b| {
        b.iter(|| secrets::hash_password(black_box(PASSWORD)))
    });
    let hash = secrets::hash_password(PASSWORD);
    g.bench_function("argon2id_verify", |b| {
        b.iter(|| secrets::verify_password(black_box(PASSWORD), &hash))
    });
    g.finish();
}

fn callers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(
        Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
        Arc::new(SystemClock),
    );
    let (token, session_id) = rt.block_on(async {
        accounts::create_user(
            &store,
            NewUser {
                id: "siti".into(),
                name: "Siti".into(),
                role: Role::Agent,
                queues: vec!["complaints".into()],
                max_concurrent: 5,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
        let (_, token) = accounts::issue_token(&store, "siti", "bench")
            .await
            .unwrap();
        let signed = sessions::sign_in(
            &store,
            "siti",
            PASSWORD,
            "127.0.0.1",
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        (token, signed.session_id)
    });
    let mut g = c.benchmark_group("caller_embedded");
    g.bench_function("api_token", |b| {
        b.iter(|| {
            rt.block_on(sessions::token_user(&store, black_box(&token)))
                .unwrap()
                .unwrap()
        })
    });
    g.bench_function("session_cookie", |b| {
        b.iter(|| {
            rt.block_on(sessions::session_user(&store, black_box(&session_id)))
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, passwords, callers);
criterion_main!(benches);
