//! Intent matching and understanding speed: the default rules, generated rule
//! sets of 100, 1,000 and 10,000 intents, loading + compiling 1,000 intents,
//! and training the classifier on 5,000 examples.
//!
//! Run: `cargo bench --bench intents -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// What a generated intent contains.
#[derive(Clone, Copy)]
struct Shape {
    /// Regex patterns and an exclude (they dominate compile time).
    patterns: bool,
    /// Examples per intent (1,000 intents × 5, or 50 × 100: 5,000 examples).
    examples: usize,
}

/// How customers ask, for generated examples.
const TEMPLATES: &[&str] = &[
    "harga {w} berapa kak",
    "{w} {v} masih ready?",
    "min {w} saya rusak",
    "mau beli {w} warna {v}",
    "is {w} {v} waterproof",
    "kak {v} nya {w} bisa cod?",
    "{w} ori ga min",
    "garansi {w} {v} berapa lama",
    "kapan {w} restock",
    "bedanya {w} sama {v} apa",
];

/// `n` intents about products and their variants, like a large catalogue
/// deployment generates: keywords, patterns with literals, some excludes, and
/// five examples each in the styles customers write.
fn synthetic_rules(n: usize, shape: Shape, salt: usize) -> Vec<(PathBuf, String)> {
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
            let patterns = if shape.patterns {
                format!(
                    "patterns = ['harga {w}( \\w+)? (berapa|brp)', '{w} .{{0,20}}(rusak|mati|error|tidak nyala)', '(ada|stok|ready) (warna|ukuran) {v}']\nexclude = ['bukan {w}']\n"
                )
            } else {
                String::new()
            };
            let examples = if shape.examples > 0 {
                let list: Vec<String> = (0..shape.examples)
                    .map(|j| {
                        let other = word(i * shape.examples + j + 104_729);
                        let t = TEMPLATES[(i + j) % TEMPLATES.len()];
                        let t = t
                            .replace("{w}", &w)
                            .replace("{v}", if j < 5 { &v } else { &other });
                        format!("{t:?}")
                    })
                    .collect();
                // `salt` changes one example of the first intent, so repeated
                // loads really train.
                let salted = if i == 0 {
                    format!(", \"{w} {salt}\"")
                } else {
                    String::new()
                };
                format!("examples = [{}{salted}]\n", list.join(", "))
            } else {
                String::new()
            };
            text.push_str(&format!(
                r#"
[[intent]]
name = "product_{i}"
priority = {priority}
action = "reply"
keywords = ["{w}", "{w} {v}", "promo {w}", "seri {v} {w}"]
{patterns}{examples}reply = "Info {w} untuk {{{{contact.name}}}}."
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

const FULL: Shape = Shape {
    patterns: true,
    examples: 5,
};

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
    let sets: Vec<(usize, RuleSet)> = [100, 1_000, 10_000]
        .into_iter()
        .map(|n| {
            let shape = Shape {
                patterns: true,
                examples: if n <= 1_000 { 5 } else { 0 },
            };
            let rules =
                RuleSet::from_sources(&synthetic_rules(n, shape, 0), &LoadOptions::default())
                    .unwrap();
            // The message names a generated product, so the big sets really match.
            assert!(rules.classify(TYPICAL[2], &ctx).is_some());
            (n, rules)
        })
        .collect();
    for (n, rules) in &sets {
        group.bench_with_input(BenchmarkId::new("synthetic_rules", n), rules, |b, rules| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % TYPICAL.len();
                black_box(rules.classify(black_box(TYPICAL[i]), &ctx))
            })
        });
    }
    group.finish();

    // Rules, classifier, combination and numbers: what the engine calls.
    let mut group = c.benchmark_group("understand");
    group.bench_function("default_rules", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % TYPICAL.len();
            black_box(default.understand(black_box(TYPICAL[i]), &ctx))
        })
    });
    for (n, rules) in sets.iter().filter(|(n, _)| *n <= 1_000) {
        assert!(rules.has_model());
        group.bench_with_input(BenchmarkId::new("synthetic_rules", n), rules, |b, rules| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % TYPICAL.len();
                black_box(rules.understand(black_box(TYPICAL[i]), &ctx))
            })
        });
    }
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    for (path, text) in synthetic_rules(1_000, FULL, 0) {
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("load_dir_1000_rules_5000_examples", |b| {
        b.iter(|| black_box(RuleSet::load_dir(dir.path(), &LoadOptions::default()).unwrap()))
    });
    // Training alone: keyword-only rules (no regexes to compile) with and
    // without 5,000 examples, as 1,000 intents × 5 and as 50 intents × 100;
    // every iteration changes one example, so the model really is trained
    // each time (nothing reused).
    let salt = AtomicUsize::new(1);
    for (intents, examples) in [(1_000, 0), (1_000, 5), (50, 0), (50, 100)] {
        let shape = Shape {
            patterns: false,
            examples,
        };
        let name = format!("keywords_{intents}_rules_{}_examples", intents * examples);
        group.bench_function(name, |b| {
            b.iter_batched(
                || synthetic_rules(intents, shape, salt.fetch_add(1, Ordering::Relaxed)),
                |sources| {
                    black_box(RuleSet::from_sources(&sources, &LoadOptions::default()).unwrap())
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
