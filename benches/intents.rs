//! Intent matching speed: the default rules, generated rule sets of 100, 1,000
//! and 10,000 intents, and loading + compiling 1,000 intents.
//!
//! Run: `cargo bench --bench intents -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use balas::intents::{LoadOptions, MatchContext, RuleSet};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const SYLLABLES: &[&str] = &[
    "ka", "ro", "vi", "mu", "te", "sa", "lo", "ni", "pe", "du", "ga", "zo", "ri", "be", "ta", "mo",
    "ke", "li", "ja", "wu",
];

/// A pronounceable, unique product-like name for `i` (e.g. `kavoru`).
fn word(i: usize) -> String {
    let n = SYLLABLES.len();
    format!(
        "{}{}{}{}",
        SYLLABLES[i % n],
        SYLLABLES[(i / n) % n],
        SYLLABLES[(i / (n * n)) % n],
        SYLLABLES[(i / (n * n * n)) % n]
    )
}

/// `n` intents about products and their variants, like a large catalogue
/// deployment generates: keywords, patterns with literals, some excludes.
fn synthetic_rules(n: usize) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let mut files = vec![(
        root.join("00-normalize.toml"),
        std::fs::read_to_string(root.join("00-normalize.toml")).unwrap(),
    )];
    let per_file = 1000;
    for chunk in 0..n.div_ceil(per_file) {
        let mut text = String::new();
        for i in chunk * per_file..((chunk + 1) * per_file).min(n) {
            let w = word(i);
            let v = word(i + 7919);
            text.push_str(&format!(
                r#"
[[intent]]
name = "product_{i}"
priority = {priority}
action = "reply"
keywords = ["{w}", "{w} {v}", "promo {w}", "seri {v} {w}"]
patterns = ['harga {w}( \w+)? (berapa|brp)', '{w} .{{0,20}}(rusak|mati|error|tidak nyala)', '(ada|stok|ready) (warna|ukuran) {v}']
exclude = ['bukan {w}']
reply = "Info {w} untuk {{{{contact.name}}}}."
"#,
                priority = 30 + (i % 20)
            ));
        }
        files.push((PathBuf::from(format!("synthetic-{chunk:02}.toml")), text));
    }
    files
}

const TYPICAL: &[&str] = &[
    "min paket sy blm nyampe jg, resi JNE CGK2A10398766201 statusnya gk gerak dr kemarin",
    "kak aku mau retur aja, ukurannya gk sesuai",
    "halo kak, harga rokakaka brp ya? masih ready?",
    "makasih ya min udh dikirim cepet, tp sayang bgt kipasnya bunyi kretek2 pas nyala",
];

fn bench(c: &mut Criterion) {
    let ctx = MatchContext::default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let default = RuleSet::load_dir(&root, &LoadOptions::default()).unwrap();
    let mut group = c.benchmark_group("classify");
    group.bench_function("default_rules", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % TYPICAL.len();
            black_box(default.classify(black_box(TYPICAL[i]), &ctx))
        })
    });
    for n in [100, 1_000, 10_000] {
        let rules = RuleSet::from_sources(&synthetic_rules(n), &LoadOptions::default()).unwrap();
        // The message names a generated product, so the big sets really match.
        assert!(rules.classify(TYPICAL[2], &ctx).is_some());
        group.bench_with_input(
            BenchmarkId::new("synthetic_rules", n),
            &rules,
            |b, rules| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % TYPICAL.len();
                    black_box(rules.classify(black_box(TYPICAL[i]), &ctx))
                })
            },
        );
    }
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    for (path, text) in synthetic_rules(1_000) {
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("load_dir_1000_rules", |b| {
        b.iter(|| black_box(RuleSet::load_dir(dir.path(), &LoadOptions::default()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
