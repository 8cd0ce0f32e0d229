//! Sending rendered messages to the Graph API.
//!
//! One POST per [`OutboundMessage`], no retries: the outbox decides whether and
//! when to retry from the [`SendError`] classification. Tokens and message
//! bodies are never logged above debug level (bodies only at debug, tokens never).

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;

use super::event::Channel;
use super::graph_error::{classify_response, network_error};
use super::outbound::{OutboundMessage, SendError, SendReceipt};
use super::render::RenderError;
use super::{instagram, whatsapp};

/// The `code` of a [`SendError::Permanent`] for a message that could not be
/// rendered for its platform (never a Graph code).
pub const RENDER_ERROR_CODE: i64 = -1;

/// Something that can deliver an [`OutboundMessage`] to its platform.
#[async_trait]
pub trait ChannelClient: Send + Sync {
    /// Sends one message. `Ok` means the platform accepted it (delivery is
    /// reported later by status webhooks).
    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError>;
}

fn render_failed(e: RenderError) -> SendError {
    SendError::Permanent {
        code: RENDER_ERROR_CODE,
        title: e.to_string(),
    }
}

/// The shared POST: JSON body, Bearer token, status classification.
async fn post(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    channel: Channel,
    body: &Value,
) -> Result<Value, SendError> {
    tracing::debug!(%channel, %url, request = %body, "graph send");
    let resp = http
        .post(url)
        .header(AUTHORIZATION, auth)
        .json(body)
        .send()
        .await
        .map_err(|e| network_error(&e))?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp.bytes().await.map_err(|e| network_error(&e))?;
    if !status.is_success() {
        let err = classify_response(status.as_u16(), retry_after.as_deref(), &bytes);
        tracing::info!(%channel, status = status.as_u16(), code = err.code(), "graph send failed");
        return Err(err);
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// WhatsApp Cloud API client for one business phone number.
#[derive(Clone)]
pub struct WhatsAppClient {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl std::fmt::Debug for WhatsAppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WhatsAppClient {
    /// A client posting to `{api_base}/{phone_number_id}/messages` (e.g.
    /// `api_base = "https://graph.facebook.com/v23.0"`) with a Bearer token.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        phone_number_id: &str,
        access_token: &str,
    ) -> WhatsAppClient {
        WhatsAppClient {
            http,
            url: format!(
                "{}/{phone_number_id}/messages",
                api_base.trim_end_matches('/')
            ),
            auth: format!("Bearer {access_token}"),
        }
    }

    /// The endpoint this client posts to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl ChannelClient for WhatsAppClient {
    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let body = whatsapp::render(msg).map_err(render_failed)?;
        let resp = post(&self.http, &self.url, &self.auth, Channel::WhatsApp, &body).await?;
        let id = resp
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if id.is_none() && resp.get("success").and_then(Value::as_bool) != Some(true) {
            // Accepted (2xx) but without an id: do not retry (it may have gone out).
            tracing::warn!("whatsapp send accepted without a message id");
        }
        Ok(SendReceipt {
            platform_message_id: id,
        })
    }
}

/// Instagram Send API client for one Instagram professional account.
#[derive(Clone)]
pub struct InstagramClient {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl std::fmt::Debug for InstagramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstagramClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl InstagramClient {
    /// A client posting to `{api_base}/{account_id}/messages` (e.g.
    /// `api_base = "https://graph.instagram.com/v23.0"`) with a Bearer token.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        account_id: &str,
        access_token: &str,
    ) -> InstagramClient {
        InstagramClient {
            http,
            url: format!("{}/{account_id}/messages", api_base.trim_end_matches('/')),
            auth: format!("Bearer {access_token}"),
        }
    }

    /// The endpoint this client posts to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl ChannelClient for InstagramClient {
    async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let body = instagram::render(msg).map_err(render_failed)?;
        let resp = post(&self.http, &self.url, &self.auth, Channel::Instagram, &body).await?;
        let id = resp
            .get("message_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if id.is_none() {
            tracing::warn!("instagram send accepted without a message id");
        }
        Ok(SendReceipt {
            platform_message_id: id,
        })
    }
}
