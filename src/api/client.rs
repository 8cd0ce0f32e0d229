//! Who is on the other end of a request: the client's address and whether it
//! came over HTTPS (both as told by trusted reverse proxies only), and the
//! session cookie.
//!
//! Balas speaks plain HTTP; TLS ends at a proxy in front of it. A proxy listed
//! in `server.trusted_proxies` is believed about the client (`X-Forwarded-For`)
//! and the scheme (`X-Forwarded-Proto`); the same headers from anyone else are
//! ignored, so a client cannot choose its own address to dodge rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::{Config, IpRange, SecureCookie};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "balas_session";

/// The peer address axum recorded for the connection, if any (absent when a
/// router is driven without a socket, as in unit tests).
pub fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

fn trusted(proxies: &[IpRange], ip: IpAddr) -> bool {
    proxies.iter().any(|r| r.contains(ip))
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &[IpRange]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted(proxies, peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(proxies, *ip))
            .unwrap_or(peer),
    )
}

/// The client's address as text for rate limits and the audit log
/// (`unknown` without a socket).
pub fn client_address(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    config: &Config,
) -> String {
    client_ip(peer(extensions), headers, &config.server.trusted_proxies)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// Whether the request reached the proxy over HTTPS (only a trusted proxy's word counts).
pub fn is_https(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &[IpRange]) -> bool {
    peer.is_some_and(|p| trusted(proxies, p))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The session id from the `Cookie` header(s), if present.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a session: HttpOnly (scripts never see it), SameSite=Strict
/// (never sent on cross-site requests), Path=/ (shared by every console tab),
/// and Secure per `auth.secure_cookie`. `None` as the id clears the cookie.
pub fn session_set_cookie(
    session_id: Option<&str>,
    max_age_secs: u64,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    config: &Config,
) -> HeaderValue {
    let secure = match config.auth.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Auto => is_https(peer(extensions), headers, &config.server.trusted_proxies),
    };
    let (value, max_age) = match session_id {
        Some(id) => (id, max_age_secs),
        None => ("", 0),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    // The id is hex and the rest is fixed text, so this cannot fail.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = vec![IpRange::parse("10.0.0.0/8").unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.3"),
            ("x-forwarded-proto", "https"),
        ]);
        // From the proxy: the right-most untrusted hop is the client.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &proxies),
            Some(ip("203.0.113.7"))
        );
        assert!(is_https(Some(ip("10.0.0.2")), &h, &proxies));
        // From anyone else the headers are ignored.
        assert_eq!(
            client_ip(Some(ip("198.51.100.1")), &h, &proxies),
            Some(ip("198.51.100.1"))
        );
        assert!(!is_https(Some(ip("198.51.100.1")), &h, &proxies));
        // A client cannot hide behind a forged left-most entry.
        let forged = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.9")]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &forged, &proxies),
            Some(ip("198.51.100.9"))
        );
        // No proxies configured: the peer, always.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &h, &[]),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(client_ip(None, &h, &proxies), None);
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; balas_session=abc123 ; b=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "balas_session=")])),
            None
        );
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
