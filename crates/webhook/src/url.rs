//! An endpoint URL that never shows its secrets.
//!
//! A Logic App "When an HTTP request is received" trigger URL carries its SAS signature in the
//! query string (`…/invoke?api-version=…&sp=…&sv=…&sig=<secret>`), so the whole query is a
//! secret: `Debug` and `Display` show the scheme, host, port and path only, and mark a query
//! that was there with `?<redacted>`. User info (`user:password@`) is never shown either.

use std::fmt;

/// A webhook endpoint's URL: the full URL for requests, the redacted form for everything else.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    full: reqwest::Url,
    shown: String,
}

/// Why an endpoint URL was refused. Carries no part of the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL (the parser's reason; it never quotes the input).
    #[error("not a URL: {0}")]
    Parse(String),
    /// A scheme other than `https` (or `http` to a loopback address).
    #[error("scheme must be https (http only to loopback), got {0}")]
    Scheme(String),
}

impl EndpointUrl {
    /// Parses and checks a URL: `https`, or `http` to `localhost` / a loopback address.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let full = reqwest::Url::parse(text.trim()).map_err(|e| UrlError::Parse(e.to_string()))?;
        match full.scheme() {
            "https" => {}
            "http" if is_loopback(&full) => {}
            other => return Err(UrlError::Scheme(other.to_owned())),
        }
        let mut shown = format!("{}://", full.scheme());
        if let Some(host) = full.host_str() {
            shown.push_str(host);
        }
        if let Some(port) = full.port() {
            shown.push(':');
            shown.push_str(&port.to_string());
        }
        shown.push_str(full.path());
        if full.query().is_some() {
            shown.push_str("?<redacted>");
        }
        Ok(EndpointUrl { full, shown })
    }

    /// The URL to send to, secrets included. Only for building requests.
    pub fn expose(&self) -> &reqwest::Url {
        &self.full
    }

    /// The redacted form (also what `Display` writes).
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EndpointUrl").field(&self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logic_app_sig_never_shows() {
        let u = EndpointUrl::parse(
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SeCrEtSiG123",
        )
        .unwrap();
        for shown in [format!("{u}"), format!("{u:?}"), u.redacted().to_owned()] {
            assert!(!shown.contains("SeCrEt"), "{shown}");
            assert!(!shown.contains("sig="), "{shown}");
            assert!(
                shown.contains("prod-12.westeurope.logic.azure.com"),
                "{shown}"
            );
            assert!(
                shown.contains("/workflows/abc/triggers/manual/paths/invoke"),
                "{shown}"
            );
            assert!(shown.contains("?<redacted>"), "{shown}");
        }
        assert!(u.expose().as_str().contains("sig=SeCrEtSiG123"));
    }

    #[test]
    fn user_info_never_shows_and_schemes_are_checked() {
        let u = EndpointUrl::parse("https://user:hunter2@example.com/hook").unwrap();
        assert_eq!(u.to_string(), "https://example.com/hook");
        assert!(EndpointUrl::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(EndpointUrl::parse("http://[::1]:8080/x").is_ok());
        assert!(EndpointUrl::parse("http://localhost/x").is_ok());
        assert!(matches!(
            EndpointUrl::parse("http://example.com/x?sig=abc"),
            Err(UrlError::Scheme(_))
        ));
        let e = EndpointUrl::parse("not a url sig=abc").unwrap_err();
        assert!(!e.to_string().contains("abc"));
    }
}
