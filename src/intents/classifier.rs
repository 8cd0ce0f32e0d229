//! The example-trained classifier: a sparse linear model over hashed features.
//!
//! Trained from the rule files' `examples` every time the rules load (and so
//! at every hot reload); nothing is stored between runs. The model is a
//! multiclass linear classifier trained with the averaged passive-aggressive
//! algorithm (PA-I, Crammer et al. 2006): one pass over the examples updates
//! only the right class and the best wrong one when their margin is too small,
//! so the weights stay sparse (a feature has weights only for the classes whose
//! examples it appeared in or was confused with) and training and scoring cost
//! grow with the features of a message, not with the number of intents.
//! `not_examples` push their intent down without teaching another one.
//!
//! Scores become probabilities by a softmax with a temperature fitted at load
//! time on a held-out quarter of the examples (minimum log-loss), so
//! "0.8" means roughly "right four times out of five" on messages like the
//! examples. See [`Model::probabilities`].
//!
//! Why not a crate: `linfa-logistic` and `smartcore` train on dense matrices
//! (`ndarray`/their own), which for hashed n-gram features means thousands of
//! examples times hundreds of thousands of columns; they also pull in a
//! numerical stack (ndarray, argmin, num-*) for what is here two hundred lines.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::features::Feature;

/// Passes over the training data.
const EPOCHS: usize = 10;
/// The margin the right class should keep over the best wrong one.
const MARGIN: f32 = 1.0;
/// PA-I aggressiveness: the largest step one example may take.
const AGGRESSIVENESS: f32 = 0.5;
/// Weights smaller than this are dropped when the model is frozen.
const PRUNE: f32 = 1e-5;
/// Shuffling seed: the same examples always give the same model.
const SEED: u64 = 0x00ba_1a5e;

/// One training message: its features, its class, and whether it is an example
/// (`true`) or a not-example (`false`) of that class.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Features of the normalized text.
    pub features: Vec<Feature>,
    /// Class index.
    pub class: usize,
    /// Example (`true`) or not-example (`false`).
    pub positive: bool,
    /// The example this sample was made from: variants of one example are
    /// held out together when calibrating.
    pub group: u32,
    /// How much the sample counts (1 for examples, less for variants).
    pub weight: f32,
}

/// A trained model: per-class weights of the features seen in training.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Feature hash → range of `entries`.
    rows: HashMap<u32, (u32, u32), BuildHasherDefault<Spread>>,
    /// `(class, weight)`, grouped by feature.
    entries: Vec<(u32, f32)>,
    bias: Vec<f32>,
    /// Softmax temperature (scores are divided by it).
    temperature: f32,
    /// The largest bias, and `Σ exp((bias - bias_max) / temperature)` over
    /// every class: a message's features touch few of a thousand classes, and
    /// the others' share of the softmax sum is this sum minus the touched
    /// ones' (see [`Model::posterior`]).
    bias_max: f32,
    bias_exp_sum: f64,
}

impl Model {
    /// Trains on `samples` for `n_classes` classes and calibrates the
    /// probabilities on a held-out quarter (when every class can spare one).
    pub(crate) fn train(samples: &[Sample], n_classes: usize) -> Model {
        let all: Vec<&Sample> = samples.iter().collect();
        let mut model = fit(&all, n_classes);
        model.set_temperature(calibrate(samples, n_classes));
        model
    }

    /// Sets the softmax temperature and the bias sums that depend on it.
    fn set_temperature(&mut self, t: f32) {
        self.temperature = t;
        self.bias_max = self.bias.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.bias_exp_sum = self
            .bias
            .iter()
            .map(|&b| (f64::from(b - self.bias_max) / f64::from(t)).exp())
            .sum();
    }

    /// Trains without calibration (temperature 1).
    #[cfg(test)]
    pub(crate) fn train_uncalibrated(samples: &[Sample], n_classes: usize) -> Model {
        let all: Vec<&Sample> = samples.iter().collect();
        let mut model = fit(&all, n_classes);
        model.set_temperature(1.0);
        model
    }

    /// Raw linear scores per class.
    pub(crate) fn scores(&self, features: &[Feature]) -> Vec<f32> {
        let mut out = self.bias.clone();
        for &(h, v) in features {
            if let Some(&(start, len)) = self.rows.get(&h) {
                for &(c, w) in &self.entries[start as usize..(start + len) as usize] {
                    out[c as usize] += w * v;
                }
            }
        }
        out
    }

    /// Calibrated probabilities per class (sum to 1).
    #[cfg(test)]
    pub(crate) fn probabilities(&self, features: &[Feature]) -> Vec<f32> {
        let mut p = self.scores(features);
        softmax(&mut p, self.temperature);
        p
    }

    /// The raw scores of `features` and what turns them into calibrated
    /// probabilities, without an `exp` per class: only the classes the
    /// features weigh on are exponentiated; the rest score their bias, whose
    /// share of the softmax sum was summed once at training time.
    pub(crate) fn posterior(&self, features: &[Feature]) -> Posterior {
        self.posterior_above(features, SMALL_MODEL)
    }

    /// [`Model::posterior`], exponentiating every class up to `small` classes.
    fn posterior_above(&self, features: &[Feature], small: usize) -> Posterior {
        let scores = self.scores(features);
        let t = f64::from(self.temperature);
        let max = scores.iter().copied().fold(self.bias_max, f32::max);
        let mut sum = 0.0f64;
        if scores.len() <= small {
            for &s in &scores {
                sum += (f64::from(s - max) / t).exp();
            }
        } else {
            // A class no feature moved (score = bias) is in `bias_exp_sum`.
            let mut moved_bias = 0.0f64;
            for (&s, &b) in scores.iter().zip(&self.bias) {
                if s != b {
                    sum += (f64::from(s - max) / t).exp();
                    moved_bias += (f64::from(b - self.bias_max) / t).exp();
                }
            }
            let rest = (self.bias_exp_sum - moved_bias).max(0.0);
            sum += (f64::from(self.bias_max - max) / t).exp() * rest;
        }
        Posterior {
            scores,
            max,
            temperature: t,
            sum,
        }
    }
}

/// Up to this many classes, [`Model::posterior`] exponentiates every score
/// (most are touched by some feature anyway).
const SMALL_MODEL: usize = 256;

/// A message's scores under a [`Model`], with the softmax normalizer.
#[derive(Debug, Clone)]
pub(crate) struct Posterior {
    /// Raw linear scores per class (the probabilities rank the same).
    pub(crate) scores: Vec<f32>,
    /// The shift that keeps the exponentials in range.
    max: f32,
    temperature: f64,
    /// `Σ exp((score - max) / temperature)` over every class.
    sum: f64,
}

impl Posterior {
    /// The calibrated probability of class `c`.
    pub(crate) fn p(&self, c: usize) -> f32 {
        if self.sum <= 0.0 {
            return 0.0;
        }
        ((f64::from(self.scores[c] - self.max) / self.temperature).exp() / self.sum) as f32
    }
}

/// `p[i] = exp(p[i] / t) / Σ`, in place.
pub(crate) fn softmax(p: &mut [f32], t: f32) {
    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in p.iter_mut() {
        *x = ((*x - max) / t).exp();
        sum += *x;
    }
    if sum > 0.0 {
        for x in p.iter_mut() {
            *x /= sum;
        }
    }
}

/// A weight under training: current value and the running sum for averaging.
#[derive(Debug, Clone, Copy)]
struct Slot {
    class: u32,
    w: f32,
    /// Σ t·Δ over updates; the average weight is `w - u / t`.
    u: f32,
}

/// Averaged PA-I over the samples.
fn fit(samples: &[&Sample], n_classes: usize) -> Model {
    // Features get dense ids once, so the passes below index vectors instead
    // of hashing every feature of every sample again.
    let mut ids: HashMap<u32, u32, BuildHasherDefault<Spread>> = HashMap::default();
    let mut hashes: Vec<u32> = Vec::new();
    let indexed: Vec<Vec<(u32, f32)>> = samples
        .iter()
        .map(|s| {
            s.features
                .iter()
                .map(|&(h, v)| {
                    let id = *ids.entry(h).or_insert_with(|| {
                        hashes.push(h);
                        hashes.len() as u32 - 1
                    });
                    (id, v)
                })
                .collect()
        })
        .collect();
    let dense = hashes.len().saturating_mul(n_classes) <= DENSE_LIMIT;
    let (mut store, indexed) = if dense {
        let cells = hashes.len() * n_classes;
        (
            Weights::Dense {
                w: vec![0.0; cells],
                u: vec![0.0; cells],
            },
            indexed,
        )
    } else {
        restricted(samples, indexed, hashes.len(), n_classes)
    };
    let mut bias = vec![(0.0f32, 0.0f32); n_classes];
    let mut scores = vec![0.0f32; n_classes];
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut rng = fastrand::Rng::with_seed(SEED);
    // The averaging clock starts at 1 so `u / t` is defined.
    let mut t: f32 = 1.0;
    // The classes a sample's features weigh for or against (restricted
    // regime: the others keep their bias as score and are not searched).
    let mut touched: Vec<usize> = Vec::new();
    let mut seen = vec![false; n_classes];
    if n_classes >= 2 {
        for _ in 0..EPOCHS {
            rng.shuffle(&mut order);
            for &i in &order {
                let s = samples[i];
                let x = &indexed[i];
                let y = s.class;
                let rival = match &store {
                    Weights::Dense { w, .. } => {
                        for (score, b) in scores.iter_mut().zip(&bias) {
                            *score = b.0;
                        }
                        for &(id, v) in x {
                            let row = &w[id as usize * n_classes..(id as usize + 1) * n_classes];
                            for (score, weight) in scores.iter_mut().zip(row) {
                                *score += weight * v;
                            }
                        }
                        best_other(&scores, y)
                    }
                    Weights::Sparse(rows) => {
                        touched.clear();
                        for &(id, v) in x {
                            for slot in rows.row(id) {
                                let c = slot.class as usize;
                                if !seen[c] {
                                    seen[c] = true;
                                    touched.push(c);
                                    scores[c] = bias[c].0;
                                }
                                scores[c] += slot.w * v;
                            }
                        }
                        if !seen[y] {
                            seen[y] = true;
                            touched.push(y);
                            scores[y] = bias[y].0;
                        }
                        let rival = touched
                            .iter()
                            .copied()
                            .filter(|&c| c != y)
                            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)));
                        for &c in &touched {
                            seen[c] = false;
                        }
                        match rival {
                            Some(r) => r,
                            None => {
                                // Nothing shared: the best by bias alone.
                                let r = best_other_by(n_classes, y, |c| bias[c].0);
                                scores[r] = bias[r].0;
                                r
                            }
                        }
                    }
                };
                let gap = scores[y] - scores[rival];
                // The squared norm of the update direction (features + bias).
                let mut norm2 = 1.0;
                for &(_, v) in x {
                    norm2 += v * v;
                }
                let cap = AGGRESSIVENESS * s.weight;
                if s.positive {
                    let loss = MARGIN - gap;
                    if loss > 0.0 {
                        let tau = (loss / (2.0 * norm2)).min(cap);
                        store.update(x, n_classes, y, tau, t);
                        store.update(x, n_classes, rival, -tau, t);
                        bias[y].0 += tau;
                        bias[y].1 += t * tau;
                        bias[rival].0 -= tau;
                        bias[rival].1 -= t * tau;
                    }
                } else {
                    // Not this class: keep it a margin below the best other one.
                    let loss = MARGIN + gap;
                    if loss > 0.0 {
                        let tau = (loss / norm2).min(cap);
                        store.update(x, n_classes, y, -tau, t);
                        bias[y].0 -= tau;
                        bias[y].1 -= t * tau;
                    }
                }
                t += 1.0;
            }
        }
    }
    // Freeze: averaged weights, small ones dropped, rows flattened.
    let mut flat_rows: HashMap<u32, (u32, u32), BuildHasherDefault<Spread>> = HashMap::default();
    flat_rows.reserve(hashes.len());
    let mut entries = Vec::new();
    for (id, &h) in hashes.iter().enumerate() {
        let start = entries.len();
        store.averaged(id, n_classes, t, &mut |class, w| {
            if w.abs() > PRUNE {
                entries.push((class, w));
            }
        });
        let len = entries.len() - start;
        if len > 0 {
            flat_rows.insert(h, (start as u32, len as u32));
        }
    }
    Model {
        rows: flat_rows,
        entries,
        bias: bias.iter().map(|(w, u)| w - u / t).collect(),
        temperature: 1.0,
        bias_max: 0.0,
        bias_exp_sum: 0.0,
    }
}

/// Up to this many weights (features × classes) are trained in a dense
/// table: every feature may weigh for or against every class (the default
/// rules need about a million). Beyond, see [`restricted`].
const DENSE_LIMIT: usize = 4_000_000;

/// In the restricted regime, features found in the examples of more than
/// this many classes (or a sixteenth of them, whichever is more) are dropped:
/// they say little about which of a thousand intents is meant, and would make
/// every row as long as the class list.
const SHARED_FEATURE_CLASSES: usize = 32;

/// Weights under training, indexed by dense feature id.
enum Weights {
    /// `w[id * n_classes + class]` and its averaging sums.
    Dense { w: Vec<f32>, u: Vec<f32> },
    /// Per feature, the classes whose examples contain it, sorted by class.
    Sparse(Rows),
}

/// Per feature, the slots of the classes it may weigh on, sorted by class,
/// all in one array (the passes visit every row of every sample, so one
/// allocation per feature would cost a pointer chase each time).
struct Rows {
    /// Row `id` is `slots[starts[id]..starts[id + 1]]`.
    starts: Vec<u32>,
    slots: Vec<Slot>,
}

impl Rows {
    fn row(&self, id: u32) -> &[Slot] {
        let id = id as usize;
        &self.slots[self.starts[id] as usize..self.starts[id + 1] as usize]
    }

    fn row_mut(&mut self, id: u32) -> &mut [Slot] {
        let id = id as usize;
        &mut self.slots[self.starts[id] as usize..self.starts[id + 1] as usize]
    }
}

/// The sparse regime for many intents: a feature may only weigh for or against
/// the classes whose examples contain it, and features shared by very many
/// classes are dropped ([`SHARED_FEATURE_CLASSES`]). Training then costs the
/// features of a sample times the few classes each is shared by, instead of
/// times every class. Returns the rows and the samples without the dropped
/// features.
fn restricted(
    samples: &[&Sample],
    indexed: Vec<Vec<(u32, f32)>>,
    n_features: usize,
    n_classes: usize,
) -> (Weights, Vec<Vec<(u32, f32)>>) {
    let mut rows: Vec<Vec<Slot>> = vec![Vec::new(); n_features];
    for (s, x) in samples.iter().zip(&indexed) {
        if !s.positive {
            continue;
        }
        let c = s.class as u32;
        for &(id, _) in x {
            let row = &mut rows[id as usize];
            if let Err(k) = row.binary_search_by_key(&c, |slot| slot.class) {
                row.insert(
                    k,
                    Slot {
                        class: c,
                        w: 0.0,
                        u: 0.0,
                    },
                );
            }
        }
    }
    let max_classes = SHARED_FEATURE_CLASSES.max(n_classes / 16);
    for row in &mut rows {
        if row.len() > max_classes {
            *row = Vec::new();
        }
    }
    let indexed = indexed
        .into_iter()
        .map(|x| {
            x.into_iter()
                .filter(|&(id, _)| !rows[id as usize].is_empty())
                .collect()
        })
        .collect();
    let mut starts = Vec::with_capacity(rows.len() + 1);
    starts.push(0u32);
    let mut slots = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    for row in rows {
        slots.extend(row);
        starts.push(slots.len() as u32);
    }
    (Weights::Sparse(Rows { starts, slots }), indexed)
}

impl Weights {
    fn update(&mut self, x: &[(u32, f32)], n_classes: usize, class: usize, delta: f32, t: f32) {
        match self {
            Weights::Dense { w, u } => {
                for &(id, v) in x {
                    let k = id as usize * n_classes + class;
                    w[k] += delta * v;
                    u[k] += t * delta * v;
                }
            }
            Weights::Sparse(rows) => {
                let c = class as u32;
                for &(id, v) in x {
                    let row = rows.row_mut(id);
                    // Only the feature-class pairs seen in the examples.
                    if let Ok(k) = row.binary_search_by_key(&c, |s| s.class) {
                        row[k].w += delta * v;
                        row[k].u += t * delta * v;
                    }
                }
            }
        }
    }

    /// Calls `out(class, averaged weight)` for feature `id`.
    fn averaged(&self, id: usize, n_classes: usize, t: f32, out: &mut dyn FnMut(u32, f32)) {
        match self {
            Weights::Dense { w, u } => {
                for c in 0..n_classes {
                    let k = id * n_classes + c;
                    out(c as u32, w[k] - u[k] / t);
                }
            }
            Weights::Sparse(rows) => {
                for slot in rows.row(id as u32) {
                    out(slot.class, slot.w - slot.u / t);
                }
            }
        }
    }
}

/// The highest-scoring class other than `y` (ties: the lowest index).
fn best_other(scores: &[f32], y: usize) -> usize {
    best_other_by(scores.len(), y, |c| scores[c])
}

/// The class other than `y` with the highest `score` (ties: the lowest index).
fn best_other_by(n_classes: usize, y: usize, score: impl Fn(usize) -> f32) -> usize {
    let mut best = if y == 0 { 1 } else { 0 };
    for c in 0..n_classes {
        if c != y && score(c) > score(best) {
            best = c;
        }
    }
    best
}

/// Classes kept per held-out message when fitting the temperature.
const CALIBRATION_CLASSES: usize = 32;

/// Temperatures tried by [`calibrate`]: 0.05 to 5, log-spaced.
fn temperature_grid() -> impl Iterator<Item = f32> {
    (0..=40).map(|i| 0.05 * 100f32.powf(i as f32 / 40.0))
}

/// The softmax temperature that minimizes the log-loss of a model trained on
/// three quarters of the examples, measured on the other quarter. 1.0 when
/// there are too few examples to hold any out.
fn calibrate(samples: &[Sample], n_classes: usize) -> f32 {
    let (train, held): (Vec<&Sample>, Vec<&Sample>) = {
        let mut train = Vec::new();
        let mut held = Vec::new();
        for s in samples {
            // Every fourth example (with its variants).
            if s.positive && s.group % 4 == 3 {
                held.push(s);
            } else {
                train.push(s);
            }
        }
        (train, held)
    };
    if held.len() < 8 {
        return 1.0;
    }
    let model = fit(&train, n_classes);
    // The true class and the closest competitors: with a thousand classes the
    // far-off ones add nothing to the log-loss but time.
    let scored: Vec<(Vec<f32>, usize)> = held
        .iter()
        .map(|s| {
            let scores = model.scores(&s.features);
            if scores.len() <= CALIBRATION_CLASSES {
                return (scores, s.class);
            }
            let mut idx: Vec<usize> = (0..scores.len()).collect();
            idx.select_nth_unstable_by(CALIBRATION_CLASSES, |&a, &b| {
                scores[b].total_cmp(&scores[a])
            });
            let mut kept: Vec<f32> = idx[..CALIBRATION_CLASSES]
                .iter()
                .filter(|&&c| c != s.class)
                .map(|&c| scores[c])
                .collect();
            kept.push(scores[s.class]);
            let y = kept.len() - 1;
            (kept, y)
        })
        .collect();
    fit_temperature(&scored)
}

/// The temperature minimizing the mean negative log-likelihood of `scored`
/// (raw scores and the true class).
pub(crate) fn fit_temperature(scored: &[(Vec<f32>, usize)]) -> f32 {
    let nll = |t: f32| -> f32 {
        scored
            .iter()
            .map(|(s, y)| {
                let mut p = s.clone();
                softmax(&mut p, t);
                -(p[*y].max(1e-9)).ln()
            })
            .sum::<f32>()
    };
    temperature_grid()
        .map(|t| (nll(t), t))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, t)| t)
        .unwrap_or(1.0)
}

/// A hasher for keys that are already hashes: one multiply spreads the 32 bits
/// over the 64 the hash table uses (its tag bits come from the top).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intents::features::features;

    fn sample(text: &str, class: usize) -> Sample {
        Sample {
            features: features(text),
            class,
            positive: true,
            group: 0,
            weight: 1.0,
        }
    }

    fn argmax(p: &[f32]) -> usize {
        p.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap()
    }

    fn data() -> Vec<Sample> {
        let classes: [&[&str]; 3] = [
            &[
                "paket saya belum sampai",
                "kapan paket sampai",
                "resi tidak bergerak",
                "pesanan belum datang",
                "kurir belum antar paket",
                "status pengiriman pesanan saya",
                "where is my package",
                "paketnya nyasar",
            ],
            &[
                "mau refund",
                "uang saya kembalikan",
                "minta pengembalian dana",
                "retur barang ini",
                "i want my money back",
                "tukar barang dong",
                "balikin duit saya",
                "refund saja",
            ],
            &[
                "halo",
                "selamat pagi",
                "hai kak",
                "permisi",
                "assalamualaikum",
                "hello",
                "pagi min",
                "halo kak",
            ],
        ];
        let mut v = Vec::new();
        for (c, texts) in classes.iter().enumerate() {
            for t in *texts {
                let mut s = sample(t, c);
                s.group = v.len() as u32;
                v.push(s);
            }
        }
        v
    }

    #[test]
    fn learns_and_generalizes_to_misspellings() {
        let m = Model::train(&data(), 3);
        for (text, want) in [
            ("paket sy blm sampai", 0),
            ("pakettt belum datang", 0),
            ("refund dong", 1),
            ("kembalikan uang", 1),
            ("halo pagi", 2),
        ] {
            let p = m.probabilities(&features(text));
            assert_eq!(argmax(&p), want, "{text}: {p:?}");
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn not_examples_push_their_class_down() {
        let mut d = data();
        let text = "halo refund";
        let before = Model::train_uncalibrated(&d, 3).scores(&features(text));
        for _ in 0..3 {
            d.push(Sample {
                features: features(text),
                class: 1,
                positive: false,
                group: 0,
                weight: 1.0,
            });
        }
        let after = Model::train_uncalibrated(&d, 3).scores(&features(text));
        assert!(
            after[1] - after[2] < before[1] - before[2],
            "{before:?} → {after:?}"
        );
        assert_ne!(argmax(&after), 1);
    }

    #[test]
    fn deterministic_and_degenerate_inputs() {
        let a = Model::train(&data(), 3).probabilities(&features("paket"));
        let b = Model::train(&data(), 3).probabilities(&features("paket"));
        assert_eq!(a, b);
        // Unknown words: the bias alone, still a distribution.
        let p = Model::train(&data(), 3).probabilities(&features("xyzzy qwerty"));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        // One class, or no samples: no panic.
        let one = Model::train(&[sample("halo", 0)], 1);
        assert_eq!(one.probabilities(&features("halo")), vec![1.0]);
        let none = Model::train(&[], 2);
        assert_eq!(none.probabilities(&[]).len(), 2);
    }

    #[test]
    fn posterior_matches_the_full_softmax() {
        // Three classes (every class touched), and forty with a word each
        // (most classes untouched: their share comes from the bias sum).
        let mut many = Vec::new();
        for c in 0..40 {
            for k in 0..4 {
                let mut s = sample(&format!("barang{c} nomor{k} kode{c}x"), c);
                s.group = many.len() as u32;
                many.push(s);
            }
        }
        for (samples, n) in [(data(), 3), (many, 40)] {
            let m = Model::train(&samples, n);
            for text in [
                "paket sy blm sampai",
                "halo refund",
                "barang7 kode7x",
                "xyzzy",
                "",
            ] {
                let f = features(text);
                let full = m.probabilities(&f);
                for small in [0, SMALL_MODEL] {
                    let post = m.posterior_above(&f, small);
                    for (c, p) in full.iter().enumerate() {
                        assert!((post.p(c) - p).abs() < 1e-5, "{text} class {c}: {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn temperature_fit_prefers_sharper_when_scores_are_right() {
        let right: Vec<(Vec<f32>, usize)> = (0..20).map(|_| (vec![1.0, 0.0], 0)).collect();
        let t_right = fit_temperature(&right);
        let mixed: Vec<(Vec<f32>, usize)> = (0..20).map(|i| (vec![1.0, 0.0], i % 2)).collect();
        let t_mixed = fit_temperature(&mixed);
        assert!(t_right < t_mixed, "{t_right} {t_mixed}");
    }
}
