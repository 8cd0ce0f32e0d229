//! Moving files to and from the Graph API: downloading what customers send,
//! uploading what we send.
//!
//! - WhatsApp download (FACTS.md §9): `GET {api_base}/{media-id}` with the Bearer
//!   token answers `{url, mime_type, sha256, file_size, id}`; the URL (valid 5
//!   minutes) is fetched with the same token. The webhook's `mime_type` and
//!   `sha256` must agree with that answer, and the bytes with its `file_size` and
//!   `sha256`.
//! - Instagram download: a plain `GET` of the attachment's CDN URL (it is signed
//!   and expires; no token).
//! - WhatsApp upload: `POST {api_base}/{phone-number-id}/media`, multipart with
//!   `messaging_product=whatsapp`, `type` and `file`; answers `{id}`, which a
//!   media message then names (`OutboundMediaSource::PlatformId`).
//!
//! A download is returned as a stream ([`MediaDownload::body`]) so a 100 MB
//! document never sits in memory; the stream checks as it goes and ends with an
//! error instead of its last `None` when the bytes were not what Meta announced,
//! so a consumer that stores only complete, error-free streams never keeps a bad
//! file. Errors are [`SendError`]s classified like every Graph call: retryable
//! (network, 5xx, rate limits, a truncated or corrupted transfer) or permanent
//! (unknown media id, expired URL, too large, inconsistent metadata). Tokens and
//! media URLs (which are credentials too) are never logged.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::{Channel, InboundMedia, MediaSource};
use super::graph_error::{classify_response, network_error};

/// A transport error of a media call. Fetching or uploading a file again is
/// harmless (nobody is messaged), so an outcome that would be unknown for a
/// send is simply retryable here.
fn transport_error(e: &reqwest::Error) -> SendError {
    match network_error(e) {
        SendError::Unknown { title } => SendError::Retryable {
            code: 0,
            title,
            scope: None,
            retry_after: None,
        },
        other => other,
    }
}
use super::media::base_mime;
use super::outbound::SendError;
use super::parse::{i64_of, nonempty};

/// `code` of a permanent error for a file larger than allowed (never a Graph code).
pub const MEDIA_TOO_LARGE_CODE: i64 = -2;
/// `code` of a retryable error for bytes that differ from what Meta announced
/// (size or SHA-256): a truncated or corrupted transfer is worth another try.
pub const MEDIA_MISMATCH_CODE: i64 = -3;
/// `code` of a permanent error for a download that cannot work: no id or URL, a
/// channel without credentials, metadata that contradicts the webhook, a URL
/// that is not HTTPS.
pub const MEDIA_UNUSABLE_CODE: i64 = -4;

/// Time to connect to Meta or its CDN.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading a response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Longest whole transfer (100 MB at ~300 kB/s).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

fn permanent(code: i64, title: impl Into<String>) -> SendError {
    SendError::Permanent {
        code,
        title: title.into(),
    }
}

fn mismatch(title: impl Into<String>) -> SendError {
    SendError::Retryable {
        code: MEDIA_MISMATCH_CODE,
        title: title.into(),
        scope: None,
        retry_after: None,
    }
}

fn too_large(size: u64, max: u64) -> SendError {
    permanent(
        MEDIA_TOO_LARGE_CODE,
        format!("the file has {size} bytes, more than the {max} allowed"),
    )
}

/// Reads a SHA-256 digest written as 64 hex digits (older WhatsApp payloads) or
/// base64, standard or URL-safe, padded or not (current ones). `None` when it is
/// neither.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        return Some(out);
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|e| e.decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// What a WhatsApp `GET /{media-id}` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppMediaInfo {
    /// Short-lived download URL (a credential: never log it).
    pub url: String,
    /// MIME type.
    pub mime_type: Option<String>,
    /// SHA-256 of the file, when given in a readable form.
    pub sha256: Option<[u8; 32]>,
    /// Size in bytes, when given.
    pub file_size: Option<u64>,
}

impl WhatsAppMediaInfo {
    /// Parses the answer; `None` without a `url`.
    pub fn parse(body: &Value) -> Option<WhatsAppMediaInfo> {
        Some(WhatsAppMediaInfo {
            url: nonempty(body, "url")?,
            mime_type: nonempty(body, "mime_type"),
            sha256: nonempty(body, "sha256").and_then(|s| parse_digest(&s)),
            file_size: i64_of(body, "file_size").and_then(|n| u64::try_from(n).ok()),
        })
    }
}

/// A download in progress.
pub struct MediaDownload {
    /// MIME type: Meta's answer on WhatsApp, the CDN's `Content-Type` on Instagram.
    pub mime_type: Option<String>,
    /// Size announced before the transfer (`file_size` or `Content-Length`).
    pub size: Option<u64>,
    /// SHA-256 announced by Meta (WhatsApp only).
    pub sha256: Option<[u8; 32]>,
    /// The bytes. Checked while streaming: more than the limit ends it with a
    /// permanent error at once; a size or digest that differs from the announced
    /// one ends it with a retryable error instead of its end. Only a stream that
    /// ends cleanly delivered the announced file.
    pub body: BoxStream<'static, Result<Bytes, SendError>>,
}

impl std::fmt::Debug for MediaDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDownload")
            .field("mime_type", &self.mime_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MediaDownload {
    /// Reads the whole body into memory (tests and small files).
    pub async fn into_bytes(mut self) -> Result<Vec<u8>, SendError> {
        let mut out = Vec::with_capacity(self.size.unwrap_or(0).min(1 << 20) as usize);
        while let Some(chunk) = self.body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// What the checking stream compares against.
struct Expected {
    max: u64,
    size: Option<u64>,
    sha256: Option<[u8; 32]>,
}

struct Checking {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    hasher: Sha256,
    seen: u64,
    expected: Expected,
    done: bool,
}

/// Wraps a response body so it enforces `expected` (see [`MediaDownload::body`]).
fn checked(
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    expected: Expected,
) -> BoxStream<'static, Result<Bytes, SendError>> {
    let state = Checking {
        inner,
        hasher: Sha256::new(),
        seen: 0,
        expected,
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                if st.seen > st.expected.max {
                    st.done = true;
                    let err = too_large(st.seen, st.expected.max);
                    return Some((Err(err), st));
                }
                st.hasher.update(&chunk);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(transport_error(&e)), st))
            }
            None => {
                st.done = true;
                if let Some(size) = st.expected.size
                    && size != st.seen
                {
                    let err =
                        mismatch(format!("received {} bytes, Meta announced {size}", st.seen));
                    return Some((Err(err), st));
                }
                let digest = std::mem::take(&mut st.hasher).finalize();
                if let Some(want) = st.expected.sha256
                    && digest.as_slice() != want.as_slice()
                {
                    let err = mismatch("the file's SHA-256 differs from Meta's");
                    return Some((Err(err), st));
                }
                None
            }
        }
    })
    .boxed()
}

/// Checks the status of a response; non-2xx becomes a classified error.
async fn ok_or_classified(resp: reqwest::Response) -> Result<reqwest::Response, SendError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp.bytes().await.unwrap_or_default();
    Err(classify_response(
        status.as_u16(),
        retry_after.as_deref(),
        &bytes,
    ))
}

fn header_u64(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// WhatsApp credentials of one business number.
#[derive(Clone)]
struct WhatsAppAccount {
    api_base: String,
    phone_number_id: String,
    auth: String,
}

/// Downloads and uploads media for the configured channels.
#[derive(Clone)]
pub struct MediaClient {
    http: reqwest::Client,
    /// The WhatsApp numbers, the default one first: each number's files
    /// are fetched and uploaded with its own token.
    whatsapp: Vec<WhatsAppAccount>,
    /// Plain `http://` media URLs are accepted only when the configured Graph
    /// base is itself plain HTTP (a local mock); in production every media URL
    /// must be HTTPS so neither tokens nor files cross the network in clear.
    allow_http: bool,
}

impl std::fmt::Debug for MediaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaClient")
            .field(
                "whatsapp",
                &self
                    .whatsapp
                    .iter()
                    .map(|w| &w.phone_number_id)
                    .collect::<Vec<_>>(),
            )
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl Default for MediaClient {
    fn default() -> Self {
        Self::new()
    }
}

impl MediaClient {
    /// A client with its own connection pool and transfer-sized timeouts (the
    /// send client's 15 s would cut a large video short). Only Instagram
    /// downloads work until [`MediaClient::with_whatsapp`] is called.
    pub fn new() -> MediaClient {
        // Redirects only to HTTPS (a CDN may redirect; nothing may downgrade us
        // to plain HTTP or point us at an internal address over it). reqwest drops
        // the Authorization header when a redirect leaves the host.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() == "https" {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .redirect(redirects)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(TRANSFER_TIMEOUT)
            .build()
            .unwrap_or_default();
        MediaClient {
            http,
            whatsapp: Vec::new(),
            allow_http: false,
        }
    }

    /// Adds a WhatsApp number: `api_base` with the pinned version (e.g.
    /// `https://graph.facebook.com/v23.0`), its phone number id and access
    /// token. The first number added is the default one.
    pub fn with_whatsapp(
        mut self,
        api_base: &str,
        phone_number_id: &str,
        access_token: &str,
    ) -> MediaClient {
        self.allow_http |= api_base.starts_with("http://");
        self.whatsapp.push(WhatsAppAccount {
            api_base: api_base.trim_end_matches('/').to_string(),
            phone_number_id: phone_number_id.to_string(),
            auth: format!("Bearer {access_token}"),
        });
        self
    }

    /// Declares the Instagram Graph base; a plain-HTTP base (a local mock) allows
    /// plain-HTTP CDN URLs.
    pub fn with_instagram(mut self, api_base: &str) -> MediaClient {
        self.allow_http |= api_base.starts_with("http://");
        self
    }

    fn check_url(&self, url: &str) -> Result<(), SendError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| permanent(MEDIA_UNUSABLE_CODE, "the media URL is not a URL"))?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http => Ok(()),
            _ => Err(permanent(
                MEDIA_UNUSABLE_CODE,
                "the media URL is not HTTPS; refusing to fetch it",
            )),
        }
    }

    /// The account of `number` (the default one for `None` or ""). A
    /// number that is not configured has no token to use: another number's
    /// token would be refused, or fetch a file the number does not own.
    fn whatsapp_account(&self, number: Option<&str>) -> Result<&WhatsAppAccount, SendError> {
        let found = match number {
            None | Some("") => self.whatsapp.first(),
            Some(id) => self.whatsapp.iter().find(|a| a.phone_number_id == id),
        };
        found.ok_or_else(|| match number {
            Some(id) if !id.is_empty() && !self.whatsapp.is_empty() => permanent(
                MEDIA_UNUSABLE_CODE,
                format!(
                    "the WhatsApp number {id} is not configured with an access token ([[whatsapp.numbers]]), so its media cannot be fetched or uploaded"
                ),
            ),
            _ => permanent(
                MEDIA_UNUSABLE_CODE,
                "no WhatsApp access token is configured, so WhatsApp media cannot be fetched",
            ),
        })
    }

    /// Starts downloading the file of `media`, which arrived on `channel` at
    /// `number` (WhatsApp: its token fetches the file; `None` = the default
    /// number), allowing at most `max_bytes` (see [`MediaDownload`]).
    pub async fn download(
        &self,
        channel: Channel,
        number: Option<&str>,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaDownload, SendError> {
        match (channel, media.source()) {
            (Channel::WhatsApp, Some(MediaSource::WhatsAppId(id))) => {
                self.whatsapp_download(number, id, media, max_bytes).await
            }
            (_, Some(MediaSource::Url(url))) => self.url_download(url, max_bytes).await,
            (_, Some(MediaSource::WhatsAppId(_))) => Err(permanent(
                MEDIA_UNUSABLE_CODE,
                "a WhatsApp media id on another channel",
            )),
            (_, None) => Err(permanent(
                MEDIA_UNUSABLE_CODE,
                "the webhook carried neither a media id nor a URL",
            )),
        }
    }

    /// `GET {api_base}/{media_id}?phone_number_id=…` with the token of
    /// `number` (the default one for `None`): where and what the file is.
    pub async fn whatsapp_media_info(
        &self,
        number: Option<&str>,
        media_id: &str,
    ) -> Result<WhatsAppMediaInfo, SendError> {
        let account = self.whatsapp_account(number)?;
        // The id becomes a path segment: nothing but what Meta's ids are made of.
        if media_id.is_empty()
            || !media_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(permanent(
                MEDIA_UNUSABLE_CODE,
                "the media id has unexpected characters",
            ));
        }
        // Asking with the phone number id makes Meta check the media belongs to it.
        let mut url = reqwest::Url::parse(&format!("{}/{media_id}", account.api_base))
            .map_err(|_| permanent(MEDIA_UNUSABLE_CODE, "the media id makes no URL"))?;
        url.query_pairs_mut()
            .append_pair("phone_number_id", &account.phone_number_id);
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, &account.auth)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let resp = ok_or_classified(resp).await?;
        let body: Value = resp.json().await.map_err(|e| transport_error(&e))?;
        WhatsAppMediaInfo::parse(&body).ok_or_else(|| {
            permanent(
                MEDIA_UNUSABLE_CODE,
                "Meta's media answer has no download URL",
            )
        })
    }

    async fn whatsapp_download(
        &self,
        number: Option<&str>,
        media_id: &str,
        media: &InboundMedia,
        max_bytes: u64,
    ) -> Result<MediaDownload, SendError> {
        let info = self.whatsapp_media_info(number, media_id).await?;
        // The webhook and the media answer describe the same file.
        if let (Some(said), Some(answered)) = (&media.mime_type, &info.mime_type)
            && base_mime(said) != base_mime(answered)
        {
            return Err(permanent(
                MEDIA_UNUSABLE_CODE,
                format!("the webhook says {said}, Meta's media answer {answered}"),
            ));
        }
        let webhook_digest = media.sha256.as_deref().and_then(parse_digest);
        if let (Some(said), Some(answered)) = (webhook_digest, info.sha256)
            && said != answered
        {
            return Err(permanent(
                MEDIA_UNUSABLE_CODE,
                "the webhook's SHA-256 differs from Meta's media answer",
            ));
        }
        if let Some(size) = info.file_size
            && size > max_bytes
        {
            return Err(too_large(size, max_bytes));
        }
        self.check_url(&info.url)?;
        let account = self.whatsapp_account(number)?;
        let resp = self
            .http
            .get(&info.url)
            .header(AUTHORIZATION, &account.auth)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let resp = ok_or_classified(resp).await?;
        let sha256 = info.sha256.or(webhook_digest);
        Ok(MediaDownload {
            mime_type: info.mime_type.or_else(|| media.mime_type.clone()),
            size: info.file_size,
            sha256,
            body: checked(
                resp.bytes_stream().boxed(),
                Expected {
                    max: max_bytes,
                    size: info.file_size,
                    sha256,
                },
            ),
        })
    }

    async fn url_download(&self, url: &str, max_bytes: u64) -> Result<MediaDownload, SendError> {
        self.check_url(url)?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let resp = ok_or_classified(resp).await?;
        let size = header_u64(&resp, CONTENT_LENGTH);
        if let Some(size) = size
            && size > max_bytes
        {
            return Err(too_large(size, max_bytes));
        }
        let mime_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(MediaDownload {
            mime_type,
            size,
            sha256: None,
            body: checked(
                resp.bytes_stream().boxed(),
                Expected {
                    max: max_bytes,
                    size,
                    sha256: None,
                },
            ),
        })
    }

    /// Uploads a file for WhatsApp number `from` (the default one for
    /// `None`; `POST /{phone-number-id}/media` with its token) and returns
    /// the media id to send it by. `body` yields exactly `size` bytes.
    pub async fn whatsapp_upload<S, E>(
        &self,
        from: Option<&str>,
        body: S,
        size: u64,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, SendError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let account = self.whatsapp_account(from)?;
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), size)
                .file_name(filename.to_string())
                .mime_str(mime_type)
                .map_err(|_| {
                    permanent(
                        MEDIA_UNUSABLE_CODE,
                        format!("{mime_type:?} is not a MIME type"),
                    )
                })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", base_mime(mime_type))
            .part("file", part);
        let url = format!("{}/{}/media", account.api_base, account.phone_number_id);
        let resp = self
            .http
            .post(&url)
            .header(AUTHORIZATION, &account.auth)
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let resp = ok_or_classified(resp).await?;
        let answer: Value = resp.json().await.map_err(|e| transport_error(&e))?;
        nonempty(&answer, "id").ok_or_else(|| {
            // Accepted without an id: nothing to send by; uploading again is safe.
            mismatch("Meta accepted the upload without a media id")
        })
    }

    /// [`MediaClient::whatsapp_upload`] of bytes already in memory.
    pub async fn whatsapp_upload_bytes(
        &self,
        from: Option<&str>,
        bytes: Bytes,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, SendError> {
        let size = bytes.len() as u64;
        let body = stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        self.whatsapp_upload(from, body, size, mime_type, filename)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_in_both_spellings() {
        let bytes = Sha256::digest(b"foto barang rusak");
        let want: [u8; 32] = bytes.as_slice().try_into().unwrap();
        let hex_form = hex::encode(want);
        let b64 = base64::engine::general_purpose::STANDARD.encode(want);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(want);
        assert_eq!(parse_digest(&hex_form), Some(want));
        assert_eq!(parse_digest(&hex_form.to_uppercase()), Some(want));
        assert_eq!(parse_digest(&b64), Some(want));
        assert_eq!(parse_digest(&b64url), Some(want));
        assert_eq!(parse_digest(" "), None);
        assert_eq!(parse_digest("<HASH>"), None);
        // 31 bytes in base64 is not a SHA-256.
        assert_eq!(
            parse_digest(&base64::engine::general_purpose::STANDARD.encode([0u8; 31])),
            None
        );
        // The fixture's value decodes.
        assert!(parse_digest("w812ZmhmYEw3/xYRLLqQdbL+dGJm/VwSOtBlacMgR0w=").is_some());
    }

    #[test]
    fn media_answer() {
        let info = WhatsAppMediaInfo::parse(&json!({
            "messaging_product": "whatsapp", "url": "https://lookaside.example/x",
            "mime_type": "image/jpeg", "sha256": "<HASH>", "file_size": "303833", "id": "1"
        }))
        .unwrap();
        assert_eq!(info.file_size, Some(303_833));
        assert_eq!(info.sha256, None);
        assert!(WhatsAppMediaInfo::parse(&json!({"id": "1"})).is_none());
        let info = WhatsAppMediaInfo::parse(&json!({"url": "u", "file_size": 12})).unwrap();
        assert_eq!(info.file_size, Some(12));
    }

    fn chunks(parts: &[&'static [u8]]) -> BoxStream<'static, reqwest::Result<Bytes>> {
        let items: Vec<reqwest::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        stream::iter(items).boxed()
    }

    async fn collect(
        s: BoxStream<'static, Result<Bytes, SendError>>,
    ) -> Vec<Result<Bytes, SendError>> {
        s.collect().await
    }

    #[tokio::test]
    async fn checking_stream() {
        let data: &[&'static [u8]] = &[b"abc", b"def"];
        let sha: [u8; 32] = Sha256::digest(b"abcdef").as_slice().try_into().unwrap();
        let ok = collect(checked(
            chunks(data),
            Expected {
                max: 6,
                size: Some(6),
                sha256: Some(sha),
            },
        ))
        .await;
        assert_eq!(ok.len(), 2);
        assert!(ok.iter().all(Result::is_ok));

        let bad_sha = collect(checked(
            chunks(data),
            Expected {
                max: 6,
                size: Some(6),
                sha256: Some([0; 32]),
            },
        ))
        .await;
        assert!(matches!(
            bad_sha.last(),
            Some(Err(SendError::Retryable {
                code: MEDIA_MISMATCH_CODE,
                ..
            }))
        ));

        let short = collect(checked(
            chunks(data),
            Expected {
                max: 100,
                size: Some(7),
                sha256: None,
            },
        ))
        .await;
        assert!(matches!(
            short.last(),
            Some(Err(SendError::Retryable { .. }))
        ));

        // Over the limit: stops at the chunk that crosses it, with a permanent error.
        let big = collect(checked(
            chunks(data),
            Expected {
                max: 4,
                size: None,
                sha256: None,
            },
        ))
        .await;
        assert_eq!(big.len(), 2);
        assert!(matches!(
            big[1],
            Err(SendError::Permanent {
                code: MEDIA_TOO_LARGE_CODE,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let client = MediaClient::new();
        let wa = InboundMedia {
            kind: crate::channels::MediaKind::Image,
            media_id: Some("1".into()),
            url: None,
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
            voice: false,
            animated: false,
        };
        // No WhatsApp account configured.
        assert!(matches!(
            client.download(Channel::WhatsApp, None, &wa, 10).await,
            Err(SendError::Permanent {
                code: MEDIA_UNUSABLE_CODE,
                ..
            })
        ));
        // Plain HTTP is refused unless the Graph base itself is plain HTTP.
        let mut ig = wa.clone();
        ig.media_id = None;
        ig.url = Some("http://cdn.example/x.jpg".into());
        assert!(matches!(
            client.download(Channel::Instagram, None, &ig, 10).await,
            Err(SendError::Permanent {
                code: MEDIA_UNUSABLE_CODE,
                ..
            })
        ));
        ig.url = Some("file:///etc/passwd".into());
        assert!(
            client
                .download(Channel::Instagram, None, &ig, 10)
                .await
                .is_err()
        );
        ig.url = None;
        assert!(matches!(
            client.download(Channel::Instagram, None, &ig, 10).await,
            Err(SendError::Permanent {
                code: MEDIA_UNUSABLE_CODE,
                ..
            })
        ));
    }
}
