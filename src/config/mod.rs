//! Configuration: one TOML file plus `BALAS_SECTION__KEY` environment overrides.
//!
//! Every section is a typed struct with `deny_unknown_fields`, and value types
//! that need checking (durations, time ranges, time zones, rates) check themselves
//! while deserializing, so every error names the key and where it came from
//! (`file:line` or the environment variable). Loading happens before anything
//! starts; a bad config exits with code 2. Secrets are wrapped in [`Secret`] so
//! they cannot be printed by accident.

mod duration;
mod load;
mod types;

pub use duration::{HumanDuration, parse_duration};
pub use load::{ConfigError, load, load_from_str, validate};
pub use types::{ClockRange, IpRange, Secret, TimeZoneName};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// State storage.
    pub store: StoreConfig,
    /// Where the files customers and agents send are kept.
    pub media: MediaConfig,
    /// Intent rule files.
    pub intents: IntentsConfig,
    /// WhatsApp Business Cloud API.
    pub whatsapp: WhatsAppConfig,
    /// Instagram Messaging API.
    pub instagram: InstagramConfig,
    /// Opening hours of the support team.
    pub business_hours: BusinessHoursConfig,
    /// Human handoff and the agent queue.
    pub handoff: HandoffConfig,
    /// Case lifecycle: automatic resolution and reopening.
    pub cases: CasesConfig,
    /// Display names of queues, labels and handoff reasons.
    pub names: NamesConfig,
    /// Satisfaction surveys after resolution.
    pub survey: SurveyConfig,
    /// Marketing broadcasts.
    pub broadcast: BroadcastConfig,
    /// Background workers.
    pub workers: WorkersConfig,
    /// Sign-in sessions and cookies.
    pub auth: AuthConfig,
    /// How long personal data and logs are kept.
    pub retention: RetentionConfig,
    /// People imported into the store at start (bootstrap; the store is the
    /// source of truth afterwards).
    pub agents: Vec<AgentConfig>,
    /// Canned responses agents can insert.
    pub canned: Vec<CannedConfig>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body in bytes (webhooks answer 413 above it).
    pub max_body_bytes: usize,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// The address Meta reaches this server at (`https://balas.example.com`),
    /// for links Meta fetches: files agents send on Instagram. Empty: such
    /// files cannot be sent.
    pub public_url: String,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` are believed; from anyone else they are ignored.
    pub trusted_proxies: Vec<IpRange>,
    /// Serve `/metrics` on this separate address only (e.g. a private
    /// interface), instead of on `listen`.
    pub metrics_listen: Option<String>,
    /// Bearer token `/metrics` requires. Without it (and without
    /// `metrics_listen`) `/metrics` is refused.
    pub metrics_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_body_bytes: 1024 * 1024,
            log_format: LogFormat::Text,
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            metrics_token: None,
        }
    }
}

/// `[auth]`: sign-in sessions of the console.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a sign-in lasts (absolute, not extended by use).
    pub session_ttl: HumanDuration,
    /// When the session cookie is marked `Secure`.
    pub secure_cookie: SecureCookie,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: HumanDuration::secs(12 * 3600),
            secure_cookie: SecureCookie::Auto,
        }
    }
}

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    /// When the request came over HTTPS, as told by `X-Forwarded-Proto: https`
    /// from a proxy in `server.trusted_proxies` (Balas itself speaks plain HTTP).
    Auto,
    /// Always (production behind TLS): browsers then keep the cookie only on
    /// HTTPS pages (and on `http://localhost`).
    Always,
}

/// `[retention]`: how long things are kept before the retention job deletes
/// them; `"0s"` keeps them forever.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Transcripts (and the records of our messages in them) of cases
    /// resolved this long ago; the case itself stays countable.
    pub transcripts: HumanDuration,
    /// Files in conversations (records and stored bytes), by age.
    pub media: HumanDuration,
    /// Cases resolved this long ago, with their survey: gone from reports.
    pub resolved_cases: HumanDuration,
    /// Dead-letter entries of the job queues.
    pub dead_letters: HumanDuration,
    /// Audit log entries.
    pub audit: HumanDuration,
    /// Records of sign-in sessions this long after they ended (an ended
    /// session never works, whatever this says).
    pub sessions: HumanDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            transcripts: HumanDuration::secs(180 * DAY),
            media: HumanDuration::secs(90 * DAY),
            resolved_cases: HumanDuration::secs(730 * DAY),
            dead_letters: HumanDuration::secs(30 * DAY),
            audit: HumanDuration::secs(365 * DAY),
            sessions: HumanDuration::secs(DAY),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Most parts `store.queue_parts` may give a job queue (a worker keeps one
/// bit per part).
pub const MAX_QUEUE_PARTS: u32 = 64;

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Redis URL; when set, Redis is used and several processes may share it.
    pub redis_url: Option<Secret>,
    /// Seed nodes of a Redis Cluster (`redis://host:port/` or `rediss://`
    /// for TLS, with the password in the URL as for `redis_url`); exclusive
    /// with `redis_url`. The client learns the other nodes from them.
    pub redis_cluster_nodes: Vec<Secret>,
    /// Replicas that must hold a webhook's events before it is answered 200
    /// (Redis `WAIT`); 0 answers as soon as the master has them.
    pub min_replicas_ack: u32,
    /// Parts of each busy job queue (`inbound`, `outbox`), each in its own
    /// Cluster slot, so their traffic divides over the masters; unset = 16
    /// on a Redis Cluster, 1 elsewhere. Every process of one store must use
    /// the same number (checked at start).
    pub queue_parts: Option<u32>,
    /// Directory of the embedded store (used when no Redis is configured).
    pub data_dir: PathBuf,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Embedded store: background turns (engine, timers, outbox) commit
    /// without waiting for an fsync and sync before anything leaves the
    /// process (see `store::durability`). `false`: every write waits for an
    /// fsync: slower, the same guarantees.
    pub deferred_durability: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_cluster_nodes: Vec::new(),
            min_replicas_ack: 0,
            queue_parts: None,
            data_dir: PathBuf::from("data"),
            key_prefix: "balas".into(),
            deferred_durability: true,
        }
    }
}

impl StoreConfig {
    /// Whether state is kept in Redis (one server or a Cluster), which
    /// several processes may share.
    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some() || !self.redis_cluster_nodes.is_empty()
    }
}

/// `[media]`: the media store (photos, videos, voice notes, documents).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// `fs` (a directory, one machine) or `s3` (any S3-compatible bucket, for
    /// several processes).
    pub backend: MediaBackendKind,
    /// Largest file kept, in bytes; the platforms' own limits per kind of file
    /// apply below it.
    pub max_bytes: u64,
    /// `fs`: the directory; empty means `<store.data_dir>/media`.
    pub dir: PathBuf,
    /// `s3`: the bucket.
    pub bucket: String,
    /// `s3`: the endpoint of an S3-compatible server (`https://…`, or `http://…`
    /// on a trusted network); empty means AWS S3 itself.
    pub endpoint: String,
    /// `s3`: the region.
    pub region: String,
    /// `s3`: a prefix for every object key (several deployments in one bucket).
    pub prefix: String,
    /// `s3`: access key id; unset means the standard AWS environment
    /// (`AWS_ACCESS_KEY_ID`, web identity, instance metadata).
    pub access_key_id: Option<Secret>,
    /// `s3`: secret access key (with `access_key_id`).
    pub secret_access_key: Option<Secret>,
    /// How long a public link to a file we send stays valid (Instagram fetches
    /// our files from such a link when the message is sent).
    pub link_ttl: HumanDuration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            backend: MediaBackendKind::Fs,
            max_bytes: 100 * 1024 * 1024,
            dir: PathBuf::new(),
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            link_ttl: HumanDuration::secs(3600),
        }
    }
}

/// Which media store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackendKind {
    /// A directory on this machine.
    Fs,
    /// An S3-compatible bucket.
    S3,
}

/// `[intents]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntentsConfig {
    /// Directory of `*.toml` rule files.
    pub path: PathBuf,
    /// Consecutive fallback answers before the conversation is handed off.
    pub fallback_handoff_after: u32,
    /// How often rule files are checked for changes (SIGHUP reloads at once).
    pub reload_every: HumanDuration,
    /// Extra `{{name}}` variables usable in replies.
    pub variables: BTreeMap<String, String>,
    /// Intents whose reply asks the customer for a photo, video or document:
    /// a file sent after such a reply (or during a complaint, see
    /// `handoff.complaint_intents`) is acknowledged by the `media_received`
    /// rule instead of the fallback.
    pub asks_for_media: Vec<String>,
    /// A picture or document sent after an intent's reply: intent name → file
    /// path (JPEG, PNG or a document the channel takes, e.g. a PDF).
    pub attachments: BTreeMap<String, PathBuf>,
}

impl Default for IntentsConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("intents"),
            fallback_handoff_after: 2,
            reload_every: HumanDuration::secs(2),
            variables: BTreeMap::new(),
            asks_for_media: vec![
                "warranty".into(),
                "repair_service".into(),
                "refund_return".into(),
                "complaint".into(),
            ],
            attachments: BTreeMap::new(),
        }
    }
}

/// `[whatsapp]`: the Meta app's WhatsApp settings (one webhook URL, one app
/// secret) and the business numbers messages go out from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsAppConfig {
    /// Accept webhooks and send messages on WhatsApp.
    pub enabled: bool,
    /// Token Meta echoes in the verification handshake.
    pub verify_token: Option<Secret>,
    /// App secret that signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: Option<Secret>,
    /// Accept unsigned webhooks when no app secret is set (local trials only).
    pub allow_unsigned: bool,
    /// System-user access token; without it messages are recorded as dry runs.
    /// With `[[whatsapp.numbers]]`, the token of every number that sets none.
    pub access_token: Option<Secret>,
    /// The business phone number id messages are sent from (one number).
    /// With several, list them in `[[whatsapp.numbers]]` instead.
    pub phone_number_id: String,
    /// Graph API base URL with the pinned version.
    pub api_base: String,
    /// Messages per second this number may send (Meta: 80 by default, up to
    /// 1,000); with `[[whatsapp.numbers]]`, the default of each.
    pub max_messages_per_second: f64,
    /// The WhatsApp Business Account id: message templates are synced from
    /// it (`GET /{waba-id}/message_templates`) and broadcasts are checked
    /// against them. Empty: templates are neither synced nor checked.
    pub business_account_id: String,
    /// Several business numbers of the app: inbound messages are answered from
    /// the number the customer wrote to. The first is the default sender.
    pub numbers: Vec<WhatsAppNumber>,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            verify_token: None,
            app_secret: None,
            allow_unsigned: false,
            access_token: None,
            phone_number_id: String::new(),
            api_base: "https://graph.facebook.com/v23.0".into(),
            max_messages_per_second: 80.0,
            business_account_id: String::new(),
            numbers: Vec::new(),
        }
    }
}

/// One WhatsApp business phone number (`[[whatsapp.numbers]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppNumber {
    /// Meta's `phone_number_id` of the number.
    pub phone_number_id: String,
    /// A short name for agents and reports (e.g. "Jakarta"); default: the id.
    #[serde(default)]
    pub name: String,
    /// Its access token; default `whatsapp.access_token`.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Messages per second it may send; default `whatsapp.max_messages_per_second`.
    #[serde(default)]
    pub max_messages_per_second: Option<f64>,
    /// The approved survey template of its WhatsApp Business Account; default
    /// `survey.whatsapp_template`.
    #[serde(default)]
    pub survey_template: Option<String>,
    /// Language code of that template; default `survey.template_language`.
    #[serde(default)]
    pub template_language: Option<String>,
    /// Its WhatsApp Business Account id (where its templates live); default
    /// `whatsapp.business_account_id`.
    #[serde(default)]
    pub business_account_id: Option<String>,
}

impl WhatsAppConfig {
    /// The WhatsApp Business Account of sender `from` (a configured number's
    /// `phone_number_id`, or `None` for the default sender): the number's own
    /// `business_account_id`, else `whatsapp.business_account_id`; `None`
    /// when neither is set.
    pub fn business_account_of(&self, from: Option<&str>) -> Option<&str> {
        let own = from
            .and_then(|f| self.numbers.iter().find(|n| n.phone_number_id == f))
            .and_then(|n| n.business_account_id.as_deref())
            .map(str::trim)
            .filter(|w| !w.is_empty());
        own.or(Some(self.business_account_id.trim()).filter(|w| !w.is_empty()))
    }

    /// Every WhatsApp Business Account configured (the default first), once
    /// each, with the access token to read its templates (the first of its
    /// numbers that has its own, else `whatsapp.access_token`).
    pub fn business_accounts(&self) -> Vec<(String, Option<&Secret>)> {
        let mut out: Vec<(String, Option<&Secret>)> = Vec::new();
        let default = self.business_account_id.trim();
        if !default.is_empty() {
            out.push((default.to_string(), self.access_token.as_ref()));
        }
        for n in &self.numbers {
            let Some(waba) = self.business_account_of(Some(&n.phone_number_id)) else {
                continue;
            };
            let token = n.access_token.as_ref().or(self.access_token.as_ref());
            match out.iter_mut().find(|(w, _)| w == waba) {
                Some(entry) => {
                    if entry.1.is_none() {
                        entry.1 = token;
                    }
                }
                None => out.push((waba.to_string(), token)),
            }
        }
        out
    }
}

/// `[instagram]`: the Meta app's Instagram settings and the professional
/// accounts messages go out from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramConfig {
    /// Accept webhooks and send messages on Instagram.
    pub enabled: bool,
    /// Token Meta echoes in the verification handshake.
    pub verify_token: Option<Secret>,
    /// App secret that signs webhooks.
    pub app_secret: Option<Secret>,
    /// Accept unsigned webhooks when no app secret is set (local trials only).
    pub allow_unsigned: bool,
    /// Instagram access token; without it messages are recorded as dry runs.
    /// With `[[instagram.accounts]]`, the token of every account that sets none.
    pub access_token: Option<Secret>,
    /// The Instagram professional account id messages are sent from (one
    /// account). With several, list them in `[[instagram.accounts]]` instead.
    pub account_id: String,
    /// Graph API base URL with the pinned version.
    pub api_base: String,
    /// Send API calls per second for this account (Meta: 300 for text); with
    /// `[[instagram.accounts]]`, the default of each.
    pub max_messages_per_second: f64,
    /// Several professional accounts of the app: messages are answered from
    /// the account the customer wrote to. The first is the default sender.
    pub accounts: Vec<InstagramAccount>,
}

impl Default for InstagramConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            verify_token: None,
            app_secret: None,
            allow_unsigned: false,
            access_token: None,
            account_id: String::new(),
            api_base: "https://graph.instagram.com/v23.0".into(),
            max_messages_per_second: 100.0,
            accounts: Vec::new(),
        }
    }
}

/// One Instagram professional account (`[[instagram.accounts]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstagramAccount {
    /// The Instagram professional account id (`entry[].id` of its webhooks).
    pub account_id: String,
    /// A short name for agents and reports; default: the id.
    #[serde(default)]
    pub name: String,
    /// Its access token; default `instagram.access_token`.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Send API calls per second; default `instagram.max_messages_per_second`.
    #[serde(default)]
    pub max_messages_per_second: Option<f64>,
}

/// A number or account messages go out from, with the settings in effect
/// (its own, else the channel's).
#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    /// WhatsApp `phone_number_id` / Instagram account id; empty for a channel
    /// set up without one (a trial: every message is a dry run).
    pub id: String,
    /// Its name for agents and reports.
    pub name: String,
    /// Its access token; `None` = dry runs.
    pub access_token: Option<Secret>,
    /// Messages per second.
    pub max_messages_per_second: f64,
    /// WhatsApp: the survey template on its account and the template's language.
    pub survey_template: Option<(String, String)>,
}

impl Config {
    /// The WhatsApp numbers in effect, the default sender first:
    /// `[[whatsapp.numbers]]`, or else the one `whatsapp.phone_number_id`
    /// (which may be empty in a trial).
    pub fn whatsapp_senders(&self) -> Vec<Sender> {
        let wa = &self.whatsapp;
        let template = |name: &Option<String>, language: &Option<String>| {
            name.clone()
                .or_else(|| self.survey.whatsapp_template.clone())
                .map(|n| {
                    let language = language.clone();
                    (
                        n,
                        language.unwrap_or_else(|| self.survey.template_language.clone()),
                    )
                })
        };
        if wa.numbers.is_empty() {
            return vec![Sender {
                id: wa.phone_number_id.clone(),
                name: wa.phone_number_id.clone(),
                access_token: wa.access_token.clone(),
                max_messages_per_second: wa.max_messages_per_second,
                survey_template: template(&None, &None),
            }];
        }
        wa.numbers
            .iter()
            .map(|n| Sender {
                id: n.phone_number_id.clone(),
                name: if n.name.is_empty() {
                    n.phone_number_id.clone()
                } else {
                    n.name.clone()
                },
                access_token: n.access_token.clone().or_else(|| wa.access_token.clone()),
                max_messages_per_second: n
                    .max_messages_per_second
                    .unwrap_or(wa.max_messages_per_second),
                survey_template: template(&n.survey_template, &n.template_language),
            })
            .collect()
    }

    /// The Instagram accounts in effect, the default sender first:
    /// `[[instagram.accounts]]`, or else the one `instagram.account_id`.
    pub fn instagram_senders(&self) -> Vec<Sender> {
        let ig = &self.instagram;
        if ig.accounts.is_empty() {
            return vec![Sender {
                id: ig.account_id.clone(),
                name: ig.account_id.clone(),
                access_token: ig.access_token.clone(),
                max_messages_per_second: ig.max_messages_per_second,
                survey_template: None,
            }];
        }
        ig.accounts
            .iter()
            .map(|a| Sender {
                id: a.account_id.clone(),
                name: if a.name.is_empty() {
                    a.account_id.clone()
                } else {
                    a.name.clone()
                },
                access_token: a.access_token.clone().or_else(|| ig.access_token.clone()),
                max_messages_per_second: a
                    .max_messages_per_second
                    .unwrap_or(ig.max_messages_per_second),
                survey_template: None,
            })
            .collect()
    }
}

/// `[business_hours]`: when agents are at work.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessHoursConfig {
    /// IANA time zone of the opening hours.
    pub timezone: TimeZoneName,
    /// Opening ranges per weekday, e.g. `["08:00-17:00"]`; a range may cross midnight.
    pub monday: Vec<ClockRange>,
    /// Tuesday ranges.
    pub tuesday: Vec<ClockRange>,
    /// Wednesday ranges.
    pub wednesday: Vec<ClockRange>,
    /// Thursday ranges.
    pub thursday: Vec<ClockRange>,
    /// Friday ranges.
    pub friday: Vec<ClockRange>,
    /// Saturday ranges.
    pub saturday: Vec<ClockRange>,
    /// Sunday ranges.
    pub sunday: Vec<ClockRange>,
    /// Closed days, `YYYY-MM-DD`.
    pub holidays: Vec<jiff::civil::Date>,
}

impl Default for BusinessHoursConfig {
    fn default() -> Self {
        let office = || vec![ClockRange::parse("08:00-17:00").expect("valid default")];
        Self {
            timezone: TimeZoneName::jakarta(),
            monday: office(),
            tuesday: office(),
            wednesday: office(),
            thursday: office(),
            friday: office(),
            saturday: vec![ClockRange::parse("09:00-13:00").expect("valid default")],
            sunday: Vec::new(),
            holidays: Vec::new(),
        }
    }
}

/// `[handoff]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoffConfig {
    /// Queue used when an intent names none.
    pub default_queue: String,
    /// Least time between two "your position is …" updates to a waiting customer.
    pub position_update_every: HumanDuration,
    /// An assigned conversation without an agent reply for this long returns to the queue.
    pub agent_reply_timeout: HumanDuration,
    /// A waiting customer hears from us at least this often.
    pub reassure_after: HumanDuration,
    /// Complaint-type intents that count towards repeated complaints.
    pub complaint_intents: Vec<String>,
    /// This many complaints …
    pub repeat_complaints: u32,
    /// … within this period raise the queue priority.
    pub repeat_window: HumanDuration,
    /// Priority added for repeated complaints.
    pub repeat_priority_boost: i32,
    /// Priority added when the customer is angry.
    pub anger_priority_boost: i32,
    /// How waiting conversations reach agents: `pull` (agents claim),
    /// `round_robin` or `least_busy` (assigned at once to an online agent of
    /// the queue with free capacity).
    pub assignment: AssignmentMode,
    /// An agent whose console has not been heard from for this long is
    /// offline (the console reports every 30 s while open).
    pub presence_timeout: HumanDuration,
    /// The console sets an agent offline after this long without using it.
    pub idle_offline_after: HumanDuration,
    /// Target time from handoff to the first agent reply (SLA): the board
    /// counts breaches, reports the attainment.
    pub first_response_target: HumanDuration,
}

/// How waiting conversations reach agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Agents claim conversations themselves.
    Pull,
    /// Assigned to the online agents of the queue in turn.
    RoundRobin,
    /// Assigned to the online agent of the queue holding the fewest.
    LeastBusy,
}

/// `[cases]`: when cases close by themselves and when they count as reopened.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CasesConfig {
    /// A case the bot owns with no customer message for this long is
    /// resolved (and surveyed per `[survey]`); `"0s"` disables it.
    pub auto_resolve_after: HumanDuration,
    /// A customer who writes again within this long after a resolution
    /// reopens the case (reports: reopen rate, first-contact resolution).
    pub reopen_window: HumanDuration,
}

impl Default for CasesConfig {
    fn default() -> Self {
        Self {
            auto_resolve_after: HumanDuration::secs(24 * 3600),
            reopen_window: HumanDuration::secs(3 * 86_400),
        }
    }
}

/// A name shown to people, in Indonesian and English.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayName {
    /// Indonesian.
    pub id: String,
    /// English (the Indonesian one when empty).
    #[serde(default)]
    pub en: String,
}

/// `[names]`: what the console shows instead of raw ids.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamesConfig {
    /// Queue id → name, e.g. `complaints = { id = "Keluhan", en = "Complaints" }`.
    pub queues: BTreeMap<String, DisplayName>,
    /// Contact label → name.
    pub labels: BTreeMap<String, DisplayName>,
    /// Handoff reason (intent name, `fallback`) → name.
    pub reasons: BTreeMap<String, DisplayName>,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            default_queue: "general".into(),
            position_update_every: HumanDuration::secs(300),
            agent_reply_timeout: HumanDuration::secs(600),
            reassure_after: HumanDuration::secs(900),
            complaint_intents: vec!["complaint".into(), "refund_return".into()],
            repeat_complaints: 3,
            repeat_window: HumanDuration::secs(7 * 86_400),
            repeat_priority_boost: 2,
            anger_priority_boost: 1,
            assignment: AssignmentMode::Pull,
            presence_timeout: HumanDuration::secs(90),
            idle_offline_after: HumanDuration::secs(30 * 60),
            first_response_target: HumanDuration::secs(5 * 60),
        }
    }
}

/// `[survey]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurveyConfig {
    /// Ask for satisfaction after resolution.
    pub enabled: bool,
    /// Time between resolution and the survey.
    pub delay: HumanDuration,
    /// No new survey for a contact surveyed within this period.
    pub cooldown: HumanDuration,
    /// Survey cases the bot resolved alone.
    pub bot_cases: bool,
    /// Share of eligible cases that get a survey (0.0–1.0).
    pub sample_rate: f64,
    /// Approved WhatsApp template for surveys outside the 24-hour window.
    pub whatsapp_template: Option<String>,
    /// Language code of that template.
    pub template_language: String,
    /// Payload words of the template's quick-reply buttons, in button order
    /// (read as answers: "puas" = 4, "biasa" = 3, "kecewa" = 1, or digits).
    pub template_buttons: Vec<String>,
    /// Ask NPS (0–10) after CSAT.
    pub nps: bool,
    /// Ask CES (1–5) after CSAT.
    pub ces: bool,
    /// Ask for a free-text comment at the end.
    pub comment: bool,
    /// Time a customer has to answer one question.
    pub step_timeout: HumanDuration,
    /// The survey closes after this long.
    pub expire_after: HumanDuration,
    /// CSAT at or below this is a low score.
    pub recovery_threshold: u8,
    /// Hand low scores to the `recovery` queue with an apology.
    pub recovery_handoff: bool,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            delay: HumanDuration::secs(900),
            cooldown: HumanDuration::secs(7 * 86_400),
            bot_cases: false,
            sample_rate: 1.0,
            whatsapp_template: None,
            template_language: "id".into(),
            template_buttons: vec!["puas".into(), "biasa".into(), "kecewa".into()],
            nps: false,
            ces: false,
            comment: false,
            step_timeout: HumanDuration::secs(3600),
            expire_after: HumanDuration::secs(86_400),
            recovery_threshold: 2,
            recovery_handoff: true,
        }
    }
}

/// `[broadcast]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastConfig {
    /// Default sending rate per sender (messages per second, 1–1,000).
    pub rate_per_sec: f64,
    /// Local time range in which nothing is sent, e.g. `"21:00-08:00"`; empty disables.
    pub quiet_hours: String,
    /// Time zone of the quiet hours.
    pub timezone: TimeZoneName,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 80.0,
            quiet_hours: "21:00-08:00".into(),
            timezone: TimeZoneName::jakarta(),
        }
    }
}

/// `[workers]`: background processing inside `balas serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Inbound events processed at once.
    pub inbound_concurrency: usize,
    /// Outbound messages sent at once.
    pub outbox_concurrency: usize,
    /// Customers' files downloaded at once.
    pub media_concurrency: usize,
    /// How often idle workers look for due work.
    pub poll_interval: HumanDuration,
    /// Lease of a claimed job, renewed every third of it while the job runs;
    /// bounds how long a dead process's jobs wait before another takes them.
    pub lease: HumanDuration,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            inbound_concurrency: 256,
            outbox_concurrency: 256,
            media_concurrency: 4,
            poll_interval: HumanDuration::millis(200),
            lease: HumanDuration::secs(10),
        }
    }
}

/// A person using the API (`[[agents]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What they may do.
    #[serde(default)]
    pub role: Role,
    /// Queues they take conversations from; empty means all.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Conversations they may hold at once.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    /// Hex SHA-256 of their bearer token (the token itself is never stored);
    /// empty for none (set a password with `balas users passwd` instead).
    #[serde(default)]
    pub token_sha256: String,
}

/// Whether `id` is a valid user id: 1–64 ASCII letters, digits, `.`, `-` or `_`
/// (it is also the sign-in name and part of store keys).
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn default_max_concurrent() -> u32 {
    5
}

/// What a person may do through the API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Answers conversations.
    #[default]
    Agent,
    /// Agent rights plus reports and any conversation.
    Supervisor,
    /// Broadcasts only.
    Marketer,
    /// Everything.
    Admin,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Marketer => "marketer",
            Role::Admin => "admin",
        }
    }
}

/// A canned response (`[[canned]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CannedConfig {
    /// Short name agents type after `/`.
    pub shortcut: String,
    /// Title shown in the picker.
    pub title: String,
    /// Text, with the same `{{variables}}` as rule replies.
    pub text: String,
    /// A picture or document sent with the text (a file path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<PathBuf>,
}
