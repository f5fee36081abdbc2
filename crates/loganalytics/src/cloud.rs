//! Cloud presets (public, US Government, China) and endpoint checks.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::Error;

/// An Azure cloud: where tokens come from, which scope the Logs Ingestion
/// API wants, and where the Data Collector API lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// Azure public cloud.
    #[default]
    Public,
    /// Azure US Government.
    UsGov,
    /// Azure China (21Vianet).
    China,
}

impl Cloud {
    /// The Microsoft Entra authority host, e.g. `https://login.microsoftonline.com`.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The token scope for the Logs Ingestion API, in the SDKs' form
    /// (`https://monitor.azure.com//.default`: the double slash makes the
    /// v1 resource `https://monitor.azure.com/`).
    pub fn ingestion_scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://monitor.azure.com//.default",
            Cloud::UsGov => "https://monitor.azure.us//.default",
            Cloud::China => "https://monitor.azure.cn//.default",
        }
    }

    /// The host suffix of the Data Collector API
    /// (`https://{workspace}.{suffix}/api/logs`).
    pub fn data_collector_suffix(self) -> &'static str {
        match self {
            Cloud::Public => "ods.opinsights.azure.com",
            Cloud::UsGov => "ods.opinsights.azure.us",
            Cloud::China => "ods.opinsights.azure.cn",
        }
    }
}

/// A Microsoft Entra authority host: a cloud preset, or any URL (for a
/// private cloud or the emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityHost {
    url: String,
}

impl AuthorityHost {
    /// An authority host given by URL, e.g. `https://login.microsoftonline.com`.
    ///
    /// # Errors
    /// Fails for a URL that does not parse, or uses plain `http://` to a
    /// host that is not loopback.
    pub fn new(url: &str) -> Result<Self, Error> {
        let parsed = check_url(url, false)?;
        Ok(Self {
            url: parsed.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The token endpoint of `tenant`.
    pub(crate) fn token_url(&self, tenant: &str) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url, tenant)
    }
}

impl From<Cloud> for AuthorityHost {
    fn from(cloud: Cloud) -> Self {
        Self {
            url: cloud.authority_host().to_owned(),
        }
    }
}

impl From<&Cloud> for AuthorityHost {
    fn from(cloud: &Cloud) -> Self {
        Self::from(*cloud)
    }
}

impl From<&AuthorityHost> for AuthorityHost {
    fn from(host: &AuthorityHost) -> Self {
        host.clone()
    }
}

/// Parses `url` and refuses plain `http://` unless the host is loopback
/// (the emulator), or, when `allow_imds` is set, the link-local IMDS
/// address `169.254.169.254`, which is only ever plain HTTP.
pub(crate) fn check_url(url: &str, allow_imds: bool) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|_| Error::builder("the endpoint is not a valid URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            let imds = allow_imds && host == "169.254.169.254";
            if !loopback && !imds {
                return Err(Error::builder(
                    "plain http:// is refused except to a loopback host; use https://",
                ));
            }
        }
        _ => return Err(Error::builder("the endpoint must be an https:// URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::builder("the endpoint has no host"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        assert!(check_url("https://x.ingest.monitor.azure.com", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_url("http://127.1.2.3", false).is_ok());
        assert!(check_url("http://[::1]:9", false).is_ok());
        assert!(check_url("http://localhost:9", false).is_ok());
        assert!(check_url("http://x.ingest.monitor.azure.com", false).is_err());
        assert!(check_url("http://10.0.0.1", false).is_err());
        assert!(check_url("http://169.254.169.254/metadata", false).is_err());
        assert!(check_url("http://169.254.169.254/metadata", true).is_ok());
        assert!(check_url("ftp://127.0.0.1", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }

    #[test]
    fn presets() {
        assert_eq!(
            AuthorityHost::from(Cloud::UsGov).token_url("t"),
            "https://login.microsoftonline.us/t/oauth2/v2.0/token"
        );
        assert_eq!(
            Cloud::China.ingestion_scope(),
            "https://monitor.azure.cn//.default"
        );
        assert_eq!(
            Cloud::Public.data_collector_suffix(),
            "ods.opinsights.azure.com"
        );
        assert_eq!(
            AuthorityHost::new("http://127.0.0.1:1/").unwrap().as_str(),
            "http://127.0.0.1:1"
        );
        assert!(AuthorityHost::new("http://login.example.com").is_err());
    }
}
