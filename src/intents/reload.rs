//! Hot reload: a shared handle to the current rules, swapped atomically.
//!
//! [`RuleHandle::current`] gives the rules to use for one message; a reload
//! builds a complete new [`RuleSet`] first and swaps it in only when it loaded
//! without errors, so a bad edit keeps the old rules running.
//! [`spawn_reloader`] reloads when the rule files change (polled) or on SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::matcher::RuleSet;
use super::rules::{LoadErrors, LoadOptions, rule_files};

/// A shared, cheaply cloneable handle to the current rule set of a directory.
#[derive(Debug, Clone)]
pub struct RuleHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: LoadOptions,
    current: RwLock<Arc<RuleSet>>,
    /// Reloads tried so far, good or bad.
    attempts: AtomicU64,
}

impl RuleHandle {
    /// Loads `dir`; fails with every error when the rules do not load.
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<RuleHandle, LoadErrors> {
        let rules = RuleSet::load_dir(dir, &opts)?;
        Ok(RuleHandle::with_rules(dir, opts, rules))
    }

    /// A handle starting with already loaded `rules` of `dir`.
    pub fn with_rules(dir: &Path, opts: LoadOptions, rules: RuleSet) -> RuleHandle {
        RuleHandle {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                opts,
                current: RwLock::new(Arc::new(rules)),
                attempts: AtomicU64::new(0),
            }),
        }
    }

    /// The rules to use now. Hold the `Arc` for one message, not forever.
    pub fn current(&self) -> Arc<RuleSet> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many reloads were tried (successful or not) since the rules were
    /// first loaded: what a caller waits on to know an edit was looked at.
    pub fn reload_attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Acquire)
    }

    /// The rule directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Reloads the directory; on success swaps the new rules in atomically, on
    /// error keeps the current rules and returns every error.
    pub fn reload(&self) -> Result<(), LoadErrors> {
        let loaded = RuleSet::load_dir(&self.inner.dir, &self.inner.opts);
        self.inner.attempts.fetch_add(1, Ordering::Release);
        let rules = loaded?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        Ok(())
    }
}

/// What the poller compares: every rule file with its modification time and size.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    rule_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (p, modified, len)
        })
        .collect()
}

/// Reloads `handle` whenever its rule files change (checked every `poll`: file
/// list, modification times, sizes) and on SIGHUP. Errors are logged with
/// `tracing::error!` and the old rules stay in use. Runs until aborted.
pub fn spawn_reloader(handle: RuleHandle, poll: Duration) -> tokio::task::JoinHandle<()> {
    // The files as they are now, before this returns: an edit made right
    // after is a change, not the starting point.
    let dir = handle.dir().to_path_buf();
    let mut seen = fingerprint(&dir);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let by_signal = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
            };
            #[cfg(not(unix))]
            let by_signal = {
                tick.tick().await;
                false
            };
            let (now, result) = {
                let handle = handle.clone();
                let dir = dir.clone();
                let before = seen.clone();
                match tokio::task::spawn_blocking(move || {
                    let now = fingerprint(&dir);
                    let result = (by_signal || now != before).then(|| handle.reload());
                    (now, result)
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "intent rule reload task failed");
                        continue;
                    }
                }
            };
            seen = now;
            match result {
                None => {}
                Some(Ok(())) => tracing::info!(
                    dir = %dir.display(),
                    intents = handle.current().intents().len(),
                    signal = by_signal,
                    "intent rules reloaded"
                ),
                Some(Err(errors)) => tracing::error!(
                    dir = %dir.display(),
                    "intent rules not reloaded, keeping the previous rules: {errors}"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intents::MatchContext;

    const GOOD: &str = r#"
[[intent]]
name = "warranty"
keywords = ["garansi"]
action = "reply"
reply = "Garansi 1 tahun, Kak."
"#;

    const BETTER: &str = r#"
[[intent]]
name = "warranty"
keywords = ["garansi", "warranty"]
action = "reply"
reply = "Garansi resmi 1 tahun, Kak."
"#;

    const BAD: &str = r#"
[[intent]]
name = "warranty"
keywords = ["garansi"]
action = "replay"
reply = "{{contact.nama}}"
"#;

    fn ctx() -> MatchContext {
        MatchContext::default()
    }

    #[test]
    fn reload_keeps_old_rules_on_a_bad_edit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("10-rules.toml");
        std::fs::write(&file, GOOD).unwrap();
        let handle = RuleHandle::load(dir.path(), LoadOptions::default()).unwrap();
        let before = handle.current();
        assert!(before.classify("warranty?", &ctx()).is_none());

        std::fs::write(&file, BAD).unwrap();
        let err = handle.reload().unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let still = handle.current();
        assert!(Arc::ptr_eq(&before, &still), "old rules must stay");
        assert_eq!(
            still.classify("garansinya?", &ctx()).unwrap().intent,
            "warranty"
        );

        std::fs::write(&file, BETTER).unwrap();
        handle.reload().unwrap();
        assert_eq!(
            handle
                .current()
                .classify("warranty?", &ctx())
                .unwrap()
                .intent,
            "warranty"
        );
        // The old Arc is still usable by whoever holds it.
        assert!(before.classify("warranty?", &ctx()).is_none());
    }

    /// Two intents taught only by examples; `extra` adds examples to `b`.
    fn taught(extra: &str) -> String {
        format!(
            r#"
[[intent]]
name = "a"
action = "reply"
reply = "A"
examples = ["paket belum sampai", "kiriman saya mana", "resi tidak bergerak", "kapan dikirim"]

[[intent]]
name = "b"
action = "reply"
reply = "B"
examples = ["mau refund", "uang kembali", "retur barang", "batalkan pesanan"{extra}]
"#
        )
    }

    #[test]
    fn reload_retrains_the_model_from_the_new_examples() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("10-rules.toml");
        std::fs::write(&file, taught("")).unwrap();
        let handle = RuleHandle::load(dir.path(), LoadOptions::default()).unwrap();
        let text = "ongkir dikembalikan kapan";
        let before = handle.current().understand(text, &ctx());
        std::fs::write(
            &file,
            taught(
                r#", "ongkir dikembalikan kapan", "kapan ongkir dikembalikan", "ongkir kembali""#,
            ),
        )
        .unwrap();
        handle.reload().unwrap();
        let after = handle.current().understand(text, &ctx());
        assert_eq!(after.explanation.model[0].intent, "b", "{after:?}");
        assert!(
            after.explanation.model[0].confidence
                > before
                    .explanation
                    .model
                    .iter()
                    .find(|s| s.intent == "b")
                    .unwrap()
                    .confidence,
            "{before:?} -> {after:?}"
        );
    }

    #[tokio::test]
    async fn reloader_picks_up_changes_and_survives_bad_edits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("10-rules.toml");
        std::fs::write(&file, GOOD).unwrap();
        let handle = RuleHandle::load(dir.path(), LoadOptions::default()).unwrap();
        let task = spawn_reloader(handle.clone(), Duration::from_millis(20));

        let tried = handle.reload_attempts();
        std::fs::write(&file, BAD).unwrap();
        // Wait until the reloader has tried the bad edit, then check it was
        // refused (not merely not looked at yet).
        for _ in 0..250 {
            if handle.reload_attempts() > tried {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(handle.reload_attempts() > tried, "the bad edit was tried");
        assert_eq!(
            handle.current().get("warranty").unwrap().replies[0].source(),
            "Garansi 1 tahun, Kak."
        );

        std::fs::write(&file, BETTER).unwrap();
        let mut ok = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if handle.current().classify("warranty", &ctx()).is_some() {
                ok = true;
                break;
            }
        }
        task.abort();
        assert!(ok, "the reloader did not pick up the fixed file");
    }
}
