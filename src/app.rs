//! The composition root: builds every part from the config and wires them
//! together (the engine and the outbox publish events; surveys, broadcasts
//! and the live console feed subscribe). The HTTP handlers, the workers and
//! the terminal chat reach the parts through it; the parts themselves only
//! hold the narrow handles they need and never see the application.

use std::sync::Arc;
use std::time::Duration;

use crate::attachments::{Files, Library};
use crate::broadcast::Broadcasts;
use crate::channels::client::{ChannelClient, InstagramClient, WhatsAppClient};
use crate::channels::{Channel, MediaClient};
use crate::clock::SharedClock;
use crate::config::{Config, Secret, StoreConfig};
use crate::engine::{BusinessHours, Engine};
use crate::events::{Bus, Subscriber};
use crate::intents::{LoadOptions, RuleHandle};
use crate::media::MediaStore;
use crate::outbox::{Outbox, Sender, Senders};
use crate::store::{Backend, Location, Store, StoreError, StoreResult};

fn backend_name(config: &Config) -> &'static str {
    match config.media.backend {
        crate::config::MediaBackendKind::Fs => "backend = \"fs\"",
        crate::config::MediaBackendKind::S3 => "backend = \"s3\"",
    }
}

/// What the webhook edge needs to know about a channel.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Webhooks accepted.
    pub enabled: bool,
    /// Handshake token.
    pub verify_token: Option<Secret>,
    /// Signing secret; `None` only with `allow_unsigned`.
    pub app_secret: Option<Secret>,
}

/// The application; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    config: Arc<Config>,
    engine: Engine,
    broadcasts: Broadcasts,
    /// Kept alive here: the bus only holds them weakly.
    _subscribers: Vec<Arc<dyn Subscriber>>,
    whatsapp: ChannelSettings,
    instagram: ChannelSettings,
}

/// Opens the store `config` names: a Redis server (`redis_url`), a Redis
/// Cluster (`redis_cluster_nodes`) or the embedded store (`data_dir`). An
/// unreachable store's error names the key to fix.
pub async fn open_backend(config: &StoreConfig) -> StoreResult<Arc<dyn Backend>> {
    let nodes: Vec<String> = config
        .redis_cluster_nodes
        .iter()
        .map(|n| n.expose().to_owned())
        .collect();
    let (key, location) = match &config.redis_url {
        Some(url) => ("store.redis_url", Location::Redis(url.expose())),
        None if !nodes.is_empty() => ("store.redis_cluster_nodes", Location::RedisCluster(&nodes)),
        None => ("store.data_dir", Location::Embedded(&config.data_dir)),
    };
    crate::store::open_backend(location, &config.key_prefix)
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{m} (key `{key}`)")),
            other => other,
        })
}

impl App {
    /// Opens the configured stores and builds the application.
    pub async fn open(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        crate::allocator::configure();
        let backend = open_backend(&config.store).await?;
        let media = MediaStore::open(&config.media, &config.store.data_dir)
            .await
            .map_err(|e| {
                anyhow::anyhow!("the media store ([media] {}): {e}", backend_name(&config))
            })?;
        let library = Library::load(&config, &media)
            .await
            .map_err(|e| anyhow::anyhow!("a configured file cannot be used: {e}"))?;
        let app = App::with_backend(config, backend, media, library, clock)?;
        if let Err(why) = app.store().check_queue_parts().await? {
            anyhow::bail!("store.queue_parts: {why}");
        }
        // The config's [[agents]] bootstrap the users in the store.
        crate::access::accounts::import_config_agents(app.store(), &app.config().agents).await?;
        Ok(app)
    }

    /// Builds the application over already opened stores.
    pub fn with_backend(
        config: Config,
        backend: Arc<dyn Backend>,
        media: MediaStore,
        library: Library,
        clock: SharedClock,
    ) -> anyhow::Result<App> {
        let options = LoadOptions {
            config_variables: config.intents.variables.keys().cloned().collect(),
        };
        let rules = RuleHandle::load(&config.intents.path, options).map_err(|e| {
            anyhow::anyhow!(
                "intent rules in {} have errors:\n{e}",
                config.intents.path.display()
            )
        })?;
        crate::config::validate(&config)?;
        for name in &config.intents.asks_for_media {
            if rules.current().get(name).is_none() {
                tracing::warn!(intent = %name, "intents.asks_for_media names an intent the rules do not define");
            }
        }
        let mut store = Store::new(backend, clock).with_replicas_ack(config.store.min_replicas_ack);
        if let Some(parts) = config.store.queue_parts {
            store = store.with_queue_parts(parts);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        // One sender per number or account; a disabled channel, or one
        // without a token, records its messages as dry runs.
        let sender =
            |channel: Channel, enabled: bool, api_base: &str, s: &crate::config::Sender| {
                let client = match (enabled, &s.access_token) {
                    (true, Some(token)) => Some(match channel {
                        Channel::WhatsApp => Arc::new(WhatsAppClient::new(
                            http.clone(),
                            api_base,
                            &s.id,
                            token.expose(),
                        )) as Arc<dyn ChannelClient>,
                        Channel::Instagram => Arc::new(InstagramClient::new(
                            http.clone(),
                            api_base,
                            &s.id,
                            token.expose(),
                        )) as Arc<dyn ChannelClient>,
                    }),
                    _ => None,
                };
                Sender {
                    id: s.id.clone(),
                    client,
                    rate: s.max_messages_per_second,
                }
            };
        let senders = Senders::new(
            config
                .whatsapp_senders()
                .iter()
                .map(|s| {
                    sender(
                        Channel::WhatsApp,
                        config.whatsapp.enabled,
                        &config.whatsapp.api_base,
                        s,
                    )
                })
                .collect(),
            config
                .instagram_senders()
                .iter()
                .map(|s| {
                    sender(
                        Channel::Instagram,
                        config.instagram.enabled,
                        &config.instagram.api_base,
                        s,
                    )
                })
                .collect(),
        );
        let mut media_client = MediaClient::new();
        // Every number's files with its own token, the default number first.
        if config.whatsapp.enabled {
            for number in config.whatsapp_senders() {
                if let Some(token) = &number.access_token {
                    media_client = media_client.with_whatsapp(
                        &config.whatsapp.api_base,
                        &number.id,
                        token.expose(),
                    );
                }
            }
        }
        if config.instagram.enabled {
            media_client = media_client.with_instagram(&config.instagram.api_base);
        }
        let files = Files::new(
            store.clone(),
            media,
            media_client,
            crate::attachments::Settings::from_config(&config),
            library,
        );
        let bus = Bus::new();
        let outbox = Outbox::new(store.clone(), bus.clone(), senders).with_files(files.clone());
        let settings =
            |enabled: bool, verify: &Option<Secret>, secret: &Option<Secret>| ChannelSettings {
                enabled,
                verify_token: verify.clone(),
                app_secret: secret.clone(),
            };
        let whatsapp = settings(
            config.whatsapp.enabled,
            &config.whatsapp.verify_token,
            &config.whatsapp.app_secret,
        );
        let instagram = settings(
            config.instagram.enabled,
            &config.instagram.verify_token,
            &config.instagram.app_secret,
        );
        let config = Arc::new(config);
        let engine = Engine::new(
            Arc::clone(&config),
            store,
            outbox,
            rules,
            bus.clone(),
            files,
        );
        // Upper layers react to what the engine and the outbox report.
        let subscribers: Vec<Arc<dyn Subscriber>> = vec![
            Arc::new(crate::survey::SurveyEvents::new(engine.clone())),
            Arc::new(crate::broadcast::BroadcastEvents::new(
                engine.store().clone(),
            )),
            Arc::new(crate::engine::LiveDelivery::new(engine.clone())),
        ];
        for s in &subscribers {
            bus.subscribe(s);
        }
        let broadcasts = Broadcasts::new(
            Arc::clone(&config),
            engine.store().clone(),
            engine.outbox().clone(),
        );
        Ok(App(Arc::new(Inner {
            config,
            engine,
            broadcasts,
            _subscribers: subscribers,
            whatsapp,
            instagram,
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The conversation engine and the handles it works with.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// Broadcast campaigns.
    pub fn broadcasts(&self) -> &Broadcasts {
        &self.0.broadcasts
    }

    /// The media store (the bytes of files in conversations).
    pub fn media(&self) -> &MediaStore {
        self.files().media()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.0.engine.store()
    }

    /// The intent rules (hot-reloadable).
    pub fn rules(&self) -> &RuleHandle {
        self.0.engine.rules()
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        self.0.engine.outbox()
    }

    /// Files in conversations.
    pub fn files(&self) -> &Files {
        self.0.engine.files()
    }

    /// Business hours.
    pub fn hours(&self) -> &BusinessHours {
        self.0.engine.hours()
    }

    /// The configured name of a business number or account (the default
    /// sender's for `None`); `None` when it is not configured.
    pub fn sender_name(&self, channel: Channel, number: Option<&str>) -> Option<String> {
        let senders = match channel {
            Channel::WhatsApp => self.config().whatsapp_senders(),
            Channel::Instagram => self.config().instagram_senders(),
        };
        let sender = match number {
            Some(n) => senders.into_iter().find(|s| s.id == n),
            None => senders.into_iter().next(),
        };
        sender.filter(|s| !s.id.is_empty()).map(|s| s.name)
    }

    /// Webhook settings of a channel.
    pub fn channel_settings(&self, channel: Channel) -> &ChannelSettings {
        match channel {
            Channel::WhatsApp => &self.0.whatsapp,
            Channel::Instagram => &self.0.instagram,
        }
    }
}
