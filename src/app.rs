//! The running application: everything built from the config, shared by the
//! HTTP handlers, the background workers and the terminal chat.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::channels::Channel;
use crate::channels::client::{ChannelClient, InstagramClient, WhatsAppClient};
use crate::clock::SharedClock;
use crate::config::{Config, Secret};
use crate::engine::BusinessHours;
use crate::intents::{LoadOptions, RuleHandle};
use crate::outbox::{Clients, Outbox, Pacing};
use crate::store::{Backend, Store};

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
    config: Config,
    store: Store,
    rules: RuleHandle,
    outbox: Outbox,
    hours: BusinessHours,
    whatsapp: ChannelSettings,
    instagram: ChannelSettings,
    inbound_wake: Notify,
    /// Identifies this process in locks and logs.
    instance_id: String,
}

impl App {
    /// Opens the configured store and builds the application.
    pub async fn open(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        let backend = crate::store::open_backend(
            config.store.redis_url.as_ref().map(Secret::expose),
            &config.store.data_dir,
            &config.store.key_prefix,
        )
        .await?;
        let app = App::with_backend(config, backend, clock)?;
        // The config's [[agents]] bootstrap the users in the store.
        crate::access::accounts::import_config_agents(app.store(), &app.config().agents).await?;
        Ok(app)
    }

    /// Builds the application over an already opened backend.
    pub fn with_backend(
        config: Config,
        backend: Arc<dyn Backend>,
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
        let store = Store::new(backend, clock);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let mut clients = Clients::default();
        if config.whatsapp.enabled
            && let Some(token) = &config.whatsapp.access_token
        {
            clients.whatsapp = Some(Arc::new(WhatsAppClient::new(
                http.clone(),
                &config.whatsapp.api_base,
                &config.whatsapp.phone_number_id,
                token.expose(),
            )) as Arc<dyn ChannelClient>);
        }
        if config.instagram.enabled
            && let Some(token) = &config.instagram.access_token
        {
            clients.instagram = Some(Arc::new(InstagramClient::new(
                http,
                &config.instagram.api_base,
                &config.instagram.account_id,
                token.expose(),
            )) as Arc<dyn ChannelClient>);
        }
        let outbox = Outbox::new(
            store.clone(),
            clients,
            Pacing {
                whatsapp: (
                    config.whatsapp.phone_number_id.clone(),
                    config.whatsapp.max_messages_per_second,
                ),
                instagram: (
                    config.instagram.account_id.clone(),
                    config.instagram.max_messages_per_second,
                ),
                lease: config.workers.lease.get(),
                concurrency: config.workers.outbox_concurrency,
            },
        );
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
        Ok(App(Arc::new(Inner {
            hours: BusinessHours::from_config(&config.business_hours),
            config,
            store,
            rules,
            outbox,
            whatsapp,
            instagram,
            inbound_wake: Notify::new(),
            instance_id: uuid::Uuid::now_v7().to_string(),
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The intent rules (hot-reloadable).
    pub fn rules(&self) -> &RuleHandle {
        &self.0.rules
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.0.outbox
    }

    /// Business hours.
    pub fn hours(&self) -> &BusinessHours {
        &self.0.hours
    }

    /// This process's id.
    pub fn instance_id(&self) -> &str {
        &self.0.instance_id
    }

    /// Webhook settings of a channel.
    pub fn channel_settings(&self, channel: Channel) -> &ChannelSettings {
        match channel {
            Channel::WhatsApp => &self.0.whatsapp,
            Channel::Instagram => &self.0.instagram,
        }
    }

    /// Tells this process's inbound workers that work arrived.
    pub fn wake_inbound(&self) {
        self.0.inbound_wake.notify_one();
    }

    /// Waits until [`App::wake_inbound`] is called.
    pub async fn inbound_woken(&self) {
        self.0.inbound_wake.notified().await;
    }
}
