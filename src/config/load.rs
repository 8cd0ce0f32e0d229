//! Reading the config file, applying environment overrides, and cross-checks.
//!
//! Errors always say which key is wrong and where the value came from: the
//! file and line, or the environment variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Config;

/// A configuration problem; the binary prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bad key or value in the file.
    #[error("{origin}: {message}")]
    Invalid {
        /// `file:line:column`, `env BALAS_X__Y`, or the file for cross-checks.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Environment variables starting with this are overrides.
const ENV_PREFIX: &str = "BALAS_";

/// Loads `path` (or built-in defaults when `None`) and applies `BALAS_SECTION__KEY`
/// overrides from the process environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (String::new(), "built-in defaults".to_string()),
    };
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
        .collect();
    load_from_str(&text, &origin, &env)
}

/// Loads from file text and explicit `(name, value)` overrides; used by [`load`]
/// and by tests.
pub fn load_from_str(
    text: &str,
    origin: &str,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    // First the file alone, so its errors carry a line number.
    let config: Config = toml::from_str(text).map_err(|e| file_error(text, origin, &e))?;
    let mut config = if env.is_empty() {
        config
    } else {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| file_error(text, origin, &e))?;
        let mut sorted: Vec<&(String, String)> = env.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            apply_env(&mut table, name, value)?;
        }
        table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: "environment overrides".into(),
                message: e.message().to_string(),
            })?
    };
    normalize(&mut config);
    // Cross-checks name the variable for keys the environment set, not the
    // file line of the value it replaced.
    let from_env: BTreeMap<String, String> = env
        .iter()
        .filter_map(|(name, _)| env_key(name).map(|k| (k, name.clone())))
        .collect();
    check(&config, text, origin, &from_env)?;
    Ok(config)
}

/// The dotted key (`server.listen`) a `BALAS_SERVER__LISTEN` variable sets.
fn env_key(name: &str) -> Option<String> {
    let (section, key) = name.strip_prefix(ENV_PREFIX)?.split_once("__")?;
    if section.is_empty() || key.is_empty() || key.contains("__") {
        return None;
    }
    Some(format!(
        "{}.{}",
        section.to_ascii_lowercase(),
        key.to_ascii_lowercase()
    ))
}

fn file_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let position = e
        .span()
        .map(|span| {
            let (line, col) = line_col(text, span.start);
            format!("{origin}:{line}:{col}")
        })
        .unwrap_or_else(|| origin.to_string());
    let key = e
        .span()
        .and_then(|span| key_at(text, span.start))
        .map(|k| format!("key `{k}`: "))
        .unwrap_or_default();
    ConfigError::Invalid {
        origin: position,
        message: format!("{key}{}", e.message().trim()),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// The dotted key (`section.key`) whose line contains `offset`, for messages.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_col(text, offset);
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
        }
        if i + 1 == line_no {
            if trimmed.starts_with('[') {
                return Some(section);
            }
            let key = trimmed.split('=').next()?.trim();
            if key.is_empty() {
                return None;
            }
            return Some(if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    None
}

/// Applies one `BALAS_SECTION__KEY=value` override to the parsed file.
fn apply_env(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Invalid {
        origin: format!("env {name}"),
        message,
    };
    let path = &name[ENV_PREFIX.len()..];
    let (section, key) = path
        .split_once("__")
        .ok_or_else(|| err("expected BALAS_SECTION__KEY".into()))?;
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    if section.is_empty() || key.is_empty() || key.contains("__") {
        return Err(err(
            "expected BALAS_SECTION__KEY, e.g. BALAS_STORE__REDIS_URL".into(),
        ));
    }
    // The value is TOML when it parses as one (numbers, booleans, arrays), else a string.
    let candidates: Vec<toml::Value> = {
        let mut v = Vec::new();
        if let Ok(parsed) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            && let Some(value) = parsed.get("v")
        {
            v.push(value.clone());
        }
        v.push(toml::Value::String(raw.to_string()));
        v
    };
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(section_table) = entry.as_table_mut() else {
        return Err(err(format!("`{section}` is not a section")));
    };
    let mut last_error = String::new();
    for candidate in candidates {
        let previous = section_table.insert(key.clone(), candidate);
        let mut probe = toml::Table::new();
        probe.insert(section.clone(), toml::Value::Table(section_table.clone()));
        match probe.try_into::<Config>() {
            Ok(_) => return Ok(()),
            Err(e) => {
                last_error = e.message().trim().to_string();
                match previous {
                    Some(p) => section_table.insert(key.clone(), p),
                    None => section_table.remove(&key),
                };
            }
        }
    }
    Err(err(format!("key `{section}.{key}`: {last_error}")))
}

/// Empty secrets mean "not set".
fn normalize(config: &mut Config) {
    for secret in [
        &mut config.store.redis_url,
        &mut config.whatsapp.verify_token,
        &mut config.whatsapp.app_secret,
        &mut config.whatsapp.access_token,
        &mut config.instagram.verify_token,
        &mut config.instagram.app_secret,
        &mut config.instagram.access_token,
        &mut config.server.metrics_token,
        &mut config.media.access_key_id,
        &mut config.media.secret_access_key,
    ] {
        if secret.as_ref().is_some_and(|s| s.is_empty()) {
            *secret = None;
        }
    }
    config.store.redis_cluster_nodes.retain(|n| !n.is_empty());
    for token in config
        .whatsapp
        .numbers
        .iter_mut()
        .map(|n| &mut n.access_token)
        .chain(
            config
                .instagram
                .accounts
                .iter_mut()
                .map(|a| &mut a.access_token),
        )
    {
        if token.as_ref().is_some_and(|s| s.is_empty()) {
            *token = None;
        }
    }
}

/// Checks a configuration built in code (tests, embedding programs) the same way
/// a loaded file is checked.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    check(config, "", "configuration", &BTreeMap::new())
}

/// Checks that span several keys or need ranges.
fn check(
    config: &Config,
    text: &str,
    origin: &str,
    from_env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let at = |key: &str| ConfigError::Invalid {
        origin: match (from_env.get(key), find_key_line(text, key)) {
            (Some(var), _) => format!("env {var}"),
            (None, Some(l)) => format!("{origin}:{l}"),
            (None, None) => origin.to_string(),
        },
        message: String::new(),
    };
    let fail = |key: &str, message: String| {
        let mut e = at(key);
        if let ConfigError::Invalid { message: m, .. } = &mut e {
            *m = format!("key `{key}`: {message}");
        }
        Err(e)
    };
    if config.whatsapp.enabled
        && config.whatsapp.app_secret.is_none()
        && !config.whatsapp.allow_unsigned
    {
        return fail(
            "whatsapp.app_secret",
            "WhatsApp is enabled without an app secret, so webhooks cannot be verified; set it (or BALAS_WHATSAPP__APP_SECRET), or set whatsapp.allow_unsigned = true for a local trial".into(),
        );
    }
    if config.instagram.enabled
        && config.instagram.app_secret.is_none()
        && !config.instagram.allow_unsigned
    {
        return fail(
            "instagram.app_secret",
            "Instagram is enabled without an app secret, so webhooks cannot be verified; set it (or BALAS_INSTAGRAM__APP_SECRET), or set instagram.allow_unsigned = true for a local trial".into(),
        );
    }
    // Unsigned webhooks are for dry-run trials only: with an access token (the
    // channel's or any number's) the channel sends real messages, and anyone
    // could forge customers and opt-outs.
    let any_token = |senders: Vec<super::Sender>| senders.iter().any(|s| s.access_token.is_some());
    for (key, unsigned, token) in [
        (
            "whatsapp.allow_unsigned",
            config.whatsapp.allow_unsigned,
            any_token(config.whatsapp_senders()),
        ),
        (
            "instagram.allow_unsigned",
            config.instagram.allow_unsigned,
            any_token(config.instagram_senders()),
        ),
    ] {
        if unsigned && token {
            let channel = key.split('.').next().unwrap_or_default();
            return fail(
                key,
                format!(
                    "unsigned webhooks are only for dry-run trials, but {channel} has an access token, so anyone could forge customer messages and opt-outs; remove allow_unsigned and set {channel}.app_secret (or BALAS_{}__APP_SECRET)",
                    channel.to_ascii_uppercase()
                ),
            );
        }
    }
    if let Err((key, message)) = check_senders(config) {
        return fail(key, message);
    }
    if let Err((key, message)) = check_store(&config.store) {
        return fail(key, message);
    }
    if config
        .server
        .listen
        .parse::<std::net::SocketAddr>()
        .is_err()
    {
        return fail(
            "server.listen",
            format!(
                "{:?} is not an address like \"0.0.0.0:8080\"",
                config.server.listen
            ),
        );
    }
    let public = config.server.public_url.trim();
    if !public.is_empty() {
        let ok = (public.starts_with("https://") || public.starts_with("http://"))
            && public
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.trim_matches('/').is_empty())
            && !public.contains(['?', '#', ' ']);
        if !ok {
            return fail(
                "server.public_url",
                format!("{public:?} is not a base URL like \"https://balas.example.com\""),
            );
        }
    }
    if let Some(addr) = &config.server.metrics_listen
        && addr.parse::<std::net::SocketAddr>().is_err()
    {
        return fail(
            "server.metrics_listen",
            format!("{addr:?} is not an address like \"127.0.0.1:9090\""),
        );
    }
    let ttl = config.auth.session_ttl.get();
    if ttl < std::time::Duration::from_secs(300)
        || ttl > std::time::Duration::from_secs(30 * 86_400)
    {
        return fail("auth.session_ttl", "must be between 5m and 30d".into());
    }
    // A typo like "30s" for "30d" would delete data as soon as it is made.
    let r = &config.retention;
    for (key, keep) in [
        ("retention.transcripts", r.transcripts),
        ("retention.media", r.media),
        ("retention.resolved_cases", r.resolved_cases),
        ("retention.dead_letters", r.dead_letters),
        ("retention.audit", r.audit),
        ("retention.sessions", r.sessions),
    ] {
        let keep = keep.get();
        if !keep.is_zero() && keep < std::time::Duration::from_secs(3600) {
            return fail(
                key,
                format!(
                    "{keep:?} is too short: write at least \"1h\" (e.g. \"30d\"), or \"0s\" to keep forever"
                ),
            );
        }
    }
    if config.server.max_body_bytes < 1024 {
        return fail("server.max_body_bytes", "must be at least 1024".into());
    }
    if !(config.broadcast.rate_per_sec > 0.0 && config.broadcast.rate_per_sec <= 1000.0) {
        return fail(
            "broadcast.rate_per_sec",
            "must be between 0 and 1000".into(),
        );
    }
    if !config.broadcast.quiet_hours.trim().is_empty()
        && let Err(e) = super::ClockRange::parse(&config.broadcast.quiet_hours)
    {
        return fail("broadcast.quiet_hours", e);
    }
    check_media(&config.media).map_err(|(key, message)| {
        let mut e = at(key);
        if let ConfigError::Invalid { message: m, .. } = &mut e {
            *m = format!("key `{key}`: {message}");
        }
        e
    })?;
    if config.handoff.presence_timeout.get() < std::time::Duration::from_secs(45) {
        return fail(
            "handoff.presence_timeout",
            "must be at least 45s: the console reports every 30 s".into(),
        );
    }
    if config.handoff.first_response_target.get().is_zero() {
        return fail(
            "handoff.first_response_target",
            "must be more than 0s".into(),
        );
    }
    if !(0.0..=1.0).contains(&config.survey.sample_rate) {
        return fail("survey.sample_rate", "must be between 0.0 and 1.0".into());
    }
    if !(1..=5).contains(&config.survey.recovery_threshold) {
        return fail(
            "survey.recovery_threshold",
            "must be between 1 and 5".into(),
        );
    }
    if config.workers.inbound_concurrency == 0
        || config.workers.outbox_concurrency == 0
        || config.workers.media_concurrency == 0
    {
        return fail(
            "workers.inbound_concurrency",
            "worker counts must be at least 1".into(),
        );
    }
    let variables: std::collections::BTreeSet<String> =
        config.intents.variables.keys().cloned().collect();
    for canned in &config.canned {
        if let Err(e) = crate::intents::ReplyTemplate::parse(&canned.text, &variables) {
            return fail(
                "canned.text",
                format!("canned response `{}`: {e}", canned.shortcut),
            );
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for agent in &config.agents {
        if !ids.insert(agent.id.as_str()) {
            return fail(
                "agents.id",
                format!("agent id {:?} appears twice", agent.id),
            );
        }
        if !super::valid_user_id(&agent.id) {
            return fail(
                "agents.id",
                format!(
                    "invalid id {:?}: use 1–64 letters, digits, '.', '-' or '_'",
                    agent.id
                ),
            );
        }
        let hash = agent.token_sha256.trim();
        if !hash.is_empty() && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit())) {
            return fail(
                "agents.token_sha256",
                format!(
                    "agent {:?}: expected 64 hex characters (the SHA-256 of the token), or leave it out and give the user a password with `balas users passwd`",
                    agent.id
                ),
            );
        }
        if agent.max_concurrent == 0 {
            return fail(
                "agents.max_concurrent",
                format!("agent {:?}: must be at least 1", agent.id),
            );
        }
    }
    Ok(())
}

/// Checks the numbers and accounts messages go out from; the error names the
/// key. The single-number keys (`whatsapp.phone_number_id`,
/// `instagram.account_id`) and the lists (`[[whatsapp.numbers]]`,
/// `[[instagram.accounts]]`) are exclusive; the channel's `access_token` and
/// `max_messages_per_second` are the defaults of every listed one.
fn check_senders(config: &Config) -> Result<(), (&'static str, String)> {
    struct Channel<'a> {
        enabled: bool,
        single_key: &'static str,
        single_id: &'a str,
        list_key: &'static str,
        id_key: &'static str,
        rate_key: &'static str,
        list_rate_key: &'static str,
        listed: usize,
        token: bool,
        senders: Vec<super::Sender>,
    }
    let channels = [
        Channel {
            enabled: config.whatsapp.enabled,
            single_key: "whatsapp.phone_number_id",
            single_id: &config.whatsapp.phone_number_id,
            list_key: "[[whatsapp.numbers]]",
            id_key: "whatsapp.numbers.phone_number_id",
            rate_key: "whatsapp.max_messages_per_second",
            list_rate_key: "whatsapp.numbers.max_messages_per_second",
            listed: config.whatsapp.numbers.len(),
            token: config.whatsapp.access_token.is_some(),
            senders: config.whatsapp_senders(),
        },
        Channel {
            enabled: config.instagram.enabled,
            single_key: "instagram.account_id",
            single_id: &config.instagram.account_id,
            list_key: "[[instagram.accounts]]",
            id_key: "instagram.accounts.account_id",
            rate_key: "instagram.max_messages_per_second",
            list_rate_key: "instagram.accounts.max_messages_per_second",
            listed: config.instagram.accounts.len(),
            token: config.instagram.access_token.is_some(),
            senders: config.instagram_senders(),
        },
    ];
    for ch in channels {
        let rate = |r: f64| r > 0.0 && r <= 1000.0;
        if ch.listed == 0 {
            if ch.enabled && ch.token && ch.single_id.is_empty() {
                return Err((
                    ch.single_key,
                    format!(
                        "needed to send messages when an access token is set (or list several in {})",
                        ch.list_key
                    ),
                ));
            }
            if !rate(ch.senders[0].max_messages_per_second) {
                return Err((ch.rate_key, "must be between 0 and 1000".into()));
            }
            continue;
        }
        if !ch.single_id.is_empty() {
            return Err((
                ch.single_key,
                format!(
                    "set either {} (one) or {} (several), not both: list this one there too",
                    ch.single_key, ch.list_key
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &ch.senders {
            if s.id.trim().is_empty() {
                return Err((
                    ch.id_key,
                    format!("every entry of {} needs one", ch.list_key),
                ));
            }
            if !seen.insert(s.id.as_str()) {
                return Err((ch.id_key, format!("{:?} is listed twice", s.id)));
            }
            if !rate(s.max_messages_per_second) {
                return Err((
                    ch.list_rate_key,
                    format!("{:?}: must be between 0 and 1000", s.id),
                ));
            }
        }
    }
    Ok(())
}

/// Checks `[store]`; the error names the key. URLs are never quoted (they
/// may carry a password).
fn check_store(store: &super::StoreConfig) -> Result<(), (&'static str, String)> {
    const NODES: &str = "store.redis_cluster_nodes";
    if store.redis_url.is_some() && !store.redis_cluster_nodes.is_empty() {
        return Err((
            NODES,
            "set either store.redis_url (one Redis server) or store.redis_cluster_nodes (a Redis Cluster), not both".into(),
        ));
    }
    let mut schemes = std::collections::BTreeSet::new();
    let mut credentials = std::collections::BTreeSet::new();
    for (i, node) in store.redis_cluster_nodes.iter().enumerate() {
        let url = node.expose();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err((
                NODES,
                format!(
                    "seed node #{} is not a URL like \"redis://10.0.0.1:6379/\"",
                    i + 1
                ),
            ));
        };
        if scheme != "redis" && scheme != "rediss" {
            return Err((
                NODES,
                format!(
                    "seed node #{}: the scheme must be redis:// (plain) or rediss:// (TLS)",
                    i + 1
                ),
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, host) = authority.rsplit_once('@').unwrap_or(("", authority));
        if host.trim_start_matches('[').is_empty() || host.starts_with(':') {
            return Err((NODES, format!("seed node #{} has no host", i + 1)));
        }
        if rest
            .split('/')
            .nth(1)
            .is_some_and(|db| !db.is_empty() && db != "0")
        {
            return Err((
                NODES,
                format!(
                    "seed node #{}: a Redis Cluster has only database 0; remove the database number",
                    i + 1
                ),
            ));
        }
        schemes.insert(scheme);
        credentials.insert(userinfo);
    }
    if schemes.len() > 1 {
        return Err((
            NODES,
            "mix of redis:// and rediss:// seed nodes; every node of a Cluster is reached the same way".into(),
        ));
    }
    if credentials.len() > 1 {
        return Err((
            NODES,
            "seed nodes with different user names or passwords; every node of a Cluster takes the same credentials".into(),
        ));
    }
    if store.min_replicas_ack > 0 && !store.uses_redis() {
        return Err((
            "store.min_replicas_ack",
            "needs Redis (store.redis_url or store.redis_cluster_nodes): the embedded store has no replicas and is durable on every commit".into(),
        ));
    }
    if store.min_replicas_ack > 5 {
        return Err((
            "store.min_replicas_ack",
            "must be between 0 and 5 (replicas of one master that must hold a webhook before it is answered)".into(),
        ));
    }
    Ok(())
}

/// Checks `[media]`; the error names the key.
fn check_media(media: &super::MediaConfig) -> Result<(), (&'static str, String)> {
    if media.max_bytes < 1024 {
        return Err(("media.max_bytes", "must be at least 1024".into()));
    }
    if media.backend != super::MediaBackendKind::S3 {
        return Ok(());
    }
    if media.bucket.trim().is_empty() {
        return Err((
            "media.bucket",
            "the s3 backend needs a bucket name (or BALAS_MEDIA__BUCKET)".into(),
        ));
    }
    let endpoint = media.endpoint.trim();
    if !endpoint.is_empty() {
        let scheme_ok = endpoint.starts_with("https://") || endpoint.starts_with("http://");
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        if !scheme_ok || host.trim_matches('/').is_empty() {
            return Err((
                "media.endpoint",
                format!(
                    "{endpoint:?} is not a URL like \"https://s3.example.com\" or \"http://127.0.0.1:9000\""
                ),
            ));
        }
    }
    if media.region.trim().is_empty() {
        return Err((
            "media.region",
            "must not be empty (S3-compatible servers usually accept \"us-east-1\")".into(),
        ));
    }
    if media.access_key_id.is_some() != media.secret_access_key.is_some() {
        return Err((
            "media.secret_access_key",
            "set both media.access_key_id and media.secret_access_key (e.g. BALAS_MEDIA__ACCESS_KEY_ID and BALAS_MEDIA__SECRET_ACCESS_KEY), or neither to use the AWS environment".into(),
        ));
    }
    Ok(())
}

/// Line of `section.key` in the file, for cross-check messages.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    // `whatsapp.numbers.phone_number_id`: key `phone_number_id` of the
    // first `[[whatsapp.numbers]]`.
    let (section, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current == section && t.split('=').next().map(str::trim) == Some(key) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let c = load_from_str("", "defaults", &[]).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8080");
        assert_eq!(c.store.data_dir, PathBuf::from("data"));
        assert_eq!(c.intents.fallback_handoff_after, 2);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[server]\nlisten = \"127.0.0.1:9000\"\nlistne = 3\n";
        let err = load_from_str(text, "balas.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("balas.toml:3:"), "{err}");
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn bad_duration_names_key_and_line() {
        let text = "[survey]\ndelay = \"15 minutes\"\n";
        let err = load_from_str(text, "balas.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("balas.toml:2:"), "{err}");
        assert!(err.contains("survey.delay"), "{err}");
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn wrong_type_names_key() {
        let text = "[intents]\nfallback_handoff_after = \"two\"\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(
            err.contains("f.toml:2:") && err.contains("intents.fallback_handoff_after"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_file() {
        let text = "[store]\nkey_prefix = \"a\"\n";
        let c = load_from_str(
            text,
            "f.toml",
            &env(&[
                ("BALAS_STORE__KEY_PREFIX", "b"),
                ("BALAS_STORE__REDIS_URL", "redis://127.0.0.1:1/"),
                ("BALAS_SURVEY__DELAY", "0s"),
                ("BALAS_WHATSAPP__VERIFY_TOKEN", "12345"),
                ("BALAS_BUSINESS_HOURS__SUNDAY", "[\"10:00-14:00\"]"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.key_prefix, "b");
        assert_eq!(c.store.redis_url.unwrap().expose(), "redis://127.0.0.1:1/");
        assert_eq!(c.survey.delay, crate::config::HumanDuration::secs(0));
        assert_eq!(c.whatsapp.verify_token.unwrap().expose(), "12345");
        assert_eq!(c.business_hours.sunday.len(), 1);
    }

    #[test]
    fn redis_cluster_settings_are_checked_without_showing_passwords() {
        let ok = "[store]\nredis_cluster_nodes = [\"rediss://:pw@10.0.0.1:6379/\", \"rediss://:pw@10.0.0.2:6379\"]\nmin_replicas_ack = 1\n";
        let c = load_from_str(ok, "f.toml", &[]).unwrap();
        assert_eq!(c.store.redis_cluster_nodes.len(), 2);
        assert!(c.store.uses_redis());
        let cases = [
            (
                "[store]\nredis_url = \"redis://a:1/\"\nredis_cluster_nodes = [\"redis://b:1/\"]\n",
                "f.toml:3",
                "store.redis_cluster_nodes",
                "not both",
            ),
            (
                "[store]\nredis_cluster_nodes = [\"http://:pw@b:1/\"]\n",
                "f.toml:2",
                "store.redis_cluster_nodes",
                "redis:// (plain) or rediss:// (TLS)",
            ),
            (
                "[store]\nredis_cluster_nodes = [\"redis://:pw@b:1/\", \"rediss://:pw@c:1/\"]\n",
                "f.toml:2",
                "store.redis_cluster_nodes",
                "mix of redis:// and rediss://",
            ),
            (
                "[store]\nredis_cluster_nodes = [\"redis://:pw@b:1/\", \"redis://:other@c:1/\"]\n",
                "f.toml:2",
                "store.redis_cluster_nodes",
                "same credentials",
            ),
            (
                "[store]\nredis_cluster_nodes = [\"redis://:pw@b:1/3\"]\n",
                "f.toml:2",
                "store.redis_cluster_nodes",
                "only database 0",
            ),
            (
                "[store]\nmin_replicas_ack = 1\n",
                "f.toml:2",
                "store.min_replicas_ack",
                "needs Redis",
            ),
        ];
        for (text, at, key, says) in cases {
            let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
            assert!(err.starts_with(at), "{err}");
            assert!(err.contains(key) && err.contains(says), "{err}");
            assert!(!err.contains("pw") && !err.contains("other"), "{err}");
        }
        let c = load_from_str(
            "",
            "f.toml",
            &env(&[(
                "BALAS_STORE__REDIS_CLUSTER_NODES",
                "[\"redis://10.0.0.1:6379/\", \"redis://10.0.0.2:6379/\"]",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.store.redis_cluster_nodes[1].expose(),
            "redis://10.0.0.2:6379/"
        );
    }

    #[test]
    fn several_numbers_take_the_channel_defaults() {
        let text = r#"
[whatsapp]
access_token = "channel-token"
max_messages_per_second = 40.0

[[whatsapp.numbers]]
phone_number_id = "111"
name = "Jakarta"
access_token = "own-token"

[[whatsapp.numbers]]
phone_number_id = "222"
max_messages_per_second = 200.0
survey_template = "survei_sby"

[survey]
whatsapp_template = "survei"
template_language = "en"
"#;
        let c = load_from_str(text, "f.toml", &[]).unwrap();
        let s = c.whatsapp_senders();
        let view: Vec<_> = s
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    s.name.as_str(),
                    s.access_token.as_ref().map(|t| t.expose()),
                    s.max_messages_per_second,
                    s.survey_template.clone(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (
                    "111",
                    "Jakarta",
                    Some("own-token"),
                    40.0,
                    Some(("survei".into(), "en".into()))
                ),
                (
                    "222",
                    "222",
                    Some("channel-token"),
                    200.0,
                    Some(("survei_sby".into(), "en".into()))
                ),
            ]
        );
        // The single-number keys are one sender (possibly without an id: a trial).
        let one = load_from_str("[whatsapp]\nphone_number_id = \"999\"\n", "f.toml", &[]).unwrap();
        assert_eq!(one.whatsapp_senders()[0].id, "999");
        assert_eq!(
            load_from_str("", "f.toml", &[])
                .unwrap()
                .instagram_senders()[0]
                .id,
            ""
        );
    }

    #[test]
    fn number_lists_are_checked_with_the_key_and_line() {
        let cases = [
            (
                "[whatsapp]\nphone_number_id = \"1\"\n\n[[whatsapp.numbers]]\nphone_number_id = \"2\"\n",
                "f.toml:2",
                "whatsapp.phone_number_id",
                "not both",
            ),
            (
                "[[whatsapp.numbers]]\nphone_number_id = \"2\"\n\n[[whatsapp.numbers]]\nphone_number_id = \"2\"\n",
                "f.toml:2",
                "whatsapp.numbers.phone_number_id",
                "listed twice",
            ),
            (
                "[[instagram.accounts]]\naccount_id = \"\"\n",
                "f.toml:2",
                "instagram.accounts.account_id",
                "needs one",
            ),
            (
                "[[whatsapp.numbers]]\nphone_number_id = \"2\"\nmax_messages_per_second = 5000.0\n",
                "f.toml:3",
                "whatsapp.numbers.max_messages_per_second",
                "between 0 and 1000",
            ),
            (
                "[[whatsapp.numbers]]\nphone_nmber_id = \"2\"\n",
                "f.toml:2",
                "phone_nmber_id",
                "unknown field",
            ),
        ];
        for (text, at, key, says) in cases {
            let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
            assert!(err.starts_with(at), "{err}");
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let err = load_from_str("", "f.toml", &env(&[("BALAS_SURVEY__DELAY", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("env BALAS_SURVEY__DELAY"), "{err}");
        let err = load_from_str("", "f.toml", &env(&[("BALAS_SERVER__NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BALAS_SERVER__NOPE") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn enabled_channel_without_secret_is_refused() {
        let text = "[whatsapp]\nenabled = true\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(err.contains("whatsapp.app_secret"), "{err}");
        let ok = "[whatsapp]\nenabled = true\nallow_unsigned = true\n";
        assert!(load_from_str(ok, "f.toml", &[]).is_ok());
    }

    #[test]
    fn cross_checks_point_at_the_line() {
        let text = "[broadcast]\n\nrate_per_sec = 5000.0\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(err.starts_with("f.toml:3"), "{err}");
        assert!(err.contains("broadcast.rate_per_sec"), "{err}");
    }

    #[test]
    fn canned_responses_may_only_use_known_variables() {
        let text = "[intents.variables]\nshop = \"Toko\"\n\n[[canned]]\nshortcut = \"hi\"\ntitle = \"Hi\"\ntext = \"Halo {{contact.name}} dari {{shop}}\"\n";
        assert!(load_from_str(text, "f.toml", &[]).is_ok());
        let bad = text.replace("{{shop}}", "{{shpo}}");
        let err = load_from_str(&bad, "f.toml", &[]).unwrap_err().to_string();
        assert!(
            err.contains("canned response `hi`") && err.contains("shpo"),
            "{err}"
        );
    }

    #[test]
    fn unsigned_webhooks_only_without_an_access_token() {
        let text = "[whatsapp]\nenabled = true\nallow_unsigned = true\naccess_token = \"EAAG\"\nphone_number_id = \"1\"\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(err.starts_with("f.toml:3"), "{err}");
        assert!(err.contains("key `whatsapp.allow_unsigned`"), "{err}");
        assert!(err.contains("dry-run"), "{err}");
        // The same through the environment names the variable that set the key.
        let trial = "[instagram]\nenabled = true\nallow_unsigned = true\n";
        assert!(
            load_from_str(trial, "f.toml", &[]).is_ok(),
            "a dry-run trial is fine"
        );
        let err = load_from_str(
            trial,
            "f.toml",
            &env(&[
                ("BALAS_INSTAGRAM__ACCESS_TOKEN", "IGQV"),
                ("BALAS_INSTAGRAM__ACCOUNT_ID", "1784"),
                ("BALAS_INSTAGRAM__ALLOW_UNSIGNED", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("env BALAS_INSTAGRAM__ALLOW_UNSIGNED")
                && err.contains("instagram.allow_unsigned"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_override_names_the_variable_not_the_file_line() {
        let text = "[server]\nlisten = \"0.0.0.0:8080\"\n";
        let err = load_from_str(
            text,
            "f.toml",
            &env(&[("BALAS_SERVER__LISTEN", "everywhere")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("env BALAS_SERVER__LISTEN:"), "{err}");
        assert!(
            err.contains("server.listen") && !err.contains("f.toml:2"),
            "{err}"
        );
        // Without the override the file line is named.
        let err = load_from_str("[server]\nlisten = \"nowhere\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.toml:2"), "{err}");
    }

    #[test]
    fn retention_periods_are_zero_or_at_least_an_hour() {
        let c = load_from_str(
            "[retention]\ntranscripts = \"0s\"\naudit = \"2h\"\n",
            "f.toml",
            &[],
        )
        .unwrap();
        assert!(c.retention.transcripts.get().is_zero());
        assert_eq!(c.retention.audit.get().as_secs(), 7200);
        assert_eq!(c.retention.media.get().as_secs(), 90 * 86_400);
        let err = load_from_str("[retention]\nmedia = \"30s\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("retention.media") && err.contains("1h"),
            "{err}"
        );
        let err = load_from_str("[retention]\ncases = \"30d\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cases"), "{err}");
    }

    #[test]
    fn access_settings_are_checked() {
        let err = load_from_str("[auth]\nsession_ttl = \"1m\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.session_ttl"), "{err}");
        let err = load_from_str(
            "[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
            "f.toml",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("f.toml:2") && err.contains("CIDR"), "{err}");
        let err = load_from_str("[server]\nmetrics_listen = \"private\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.metrics_listen"), "{err}");
        let ok = "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmetrics_listen = \"127.0.0.1:9090\"\nmetrics_token = \"\"\n[auth]\nsecure_cookie = \"always\"\n";
        let c = load_from_str(ok, "f.toml", &[]).unwrap();
        assert_eq!(c.server.trusted_proxies.len(), 2);
        assert!(c.server.metrics_token.is_none(), "empty means unset");
        assert_eq!(c.auth.secure_cookie, crate::config::SecureCookie::Always);
    }

    #[test]
    fn agents_may_come_without_a_token_but_need_a_valid_id() {
        let ok = "[[agents]]\nid = \"siti\"\nname = \"Siti\"\n";
        assert!(load_from_str(ok, "f.toml", &[]).is_ok());
        let bad = "[[agents]]\nid = \"siti aminah\"\nname = \"Siti\"\n";
        let err = load_from_str(bad, "f.toml", &[]).unwrap_err().to_string();
        assert!(err.contains("agents.id"), "{err}");
    }

    #[test]
    fn media_section_is_checked() {
        let c = load_from_str("", "f.toml", &[]).unwrap();
        assert_eq!(c.media.backend, crate::config::MediaBackendKind::Fs);
        assert_eq!(c.media.max_bytes, 100 * 1024 * 1024);
        let err = load_from_str("[media]\nbackend = \"s3\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.bucket"), "{err}");
        let err = load_from_str("[media]\nbackend = \"nfs\"\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.toml:2:") && err.contains("media.backend"),
            "{err}"
        );
        let text = "[media]\nbackend = \"s3\"\nbucket = \"b\"\n\nendpoint = \"minio:9000\"\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("f.toml:5") && err.contains("media.endpoint"),
            "{err}"
        );
        let ok =
            "[media]\nbackend = \"s3\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9000\"\n";
        let c = load_from_str(
            ok,
            "f.toml",
            &env(&[
                ("BALAS_MEDIA__ACCESS_KEY_ID", "AKIA"),
                ("BALAS_MEDIA__SECRET_ACCESS_KEY", "s3cr3t"),
            ]),
        )
        .unwrap();
        assert_eq!(c.media.secret_access_key.unwrap().expose(), "s3cr3t");
        let err = load_from_str(
            ok,
            "f.toml",
            &env(&[("BALAS_MEDIA__ACCESS_KEY_ID", "AKIA")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("media.secret_access_key"), "{err}");
        let err = load_from_str("[media]\nmax_bytes = 10\n", "f.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.max_bytes"), "{err}");
        let err = load_from_str("", "f.toml", &env(&[("BALAS_MEDIA__MAX_BYTES", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("env BALAS_MEDIA__MAX_BYTES"), "{err}");
    }

    #[test]
    fn agent_token_hash_is_checked() {
        let text = "[[agents]]\nid = \"a\"\nname = \"A\"\ntoken_sha256 = \"abc\"\n";
        let err = load_from_str(text, "f.toml", &[]).unwrap_err().to_string();
        assert!(err.contains("token_sha256"), "{err}");
    }
}
