//! Where the provider client may go besides the provider's own origin: the download policy
//! (https, allowed hosts, no private or local addresses) and a DNS resolver that drops private
//! and local addresses.

use std::net::IpAddr;

use reqwest::Url;

use crate::limits::bounded;

/// Where model files may come from when not from the provider's own origin.
#[derive(Debug, Clone)]
pub(super) struct DownloadPolicy {
    /// Lower-case hosts; `*.domain` entries as `.domain`.
    hosts: Vec<String>,
    allow_private: bool,
}

impl DownloadPolicy {
    pub(super) fn new(hosts: &[String], allow_private: bool) -> Self {
        let hosts = hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .map(|h| match h.strip_prefix("*.") {
                Some(rest) => format!(".{rest}"),
                None => h,
            })
            .collect();
        DownloadPolicy {
            hosts,
            allow_private,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            if h.starts_with('.') {
                host.ends_with(h.as_str()) && host.len() > h.len()
            } else {
                *h == host
            }
        })
    }

    /// Whether `url` (on another origin than the provider's) may be fetched.
    pub(super) fn check(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            other => return Err(format!("scheme {other} (https only)")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("no host".into()),
        };
        if !self.host_allowed(&host) {
            return Err(format!(
                "host {} is not in IMAGE2MODEL_DOWNLOAD_HOSTS",
                bounded(&host, 100)
            ));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = ip
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(format!("{ip} is a private or local address"));
        }
        Ok(())
    }
}

/// False for loopback, private, link-local, shared, documentation, unspecified, broadcast,
/// multicast and reserved addresses (IPv4-mapped IPv6 addresses as their IPv4 address).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// A resolver that drops private and local addresses: a public name cannot be pointed inside.
pub(super) struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_exactly_or_as_subdomains_of_a_wildcard() {
        let p = DownloadPolicy::new(&["fal.media".into(), "*.CDN.example".into()], false);
        assert!(p.host_allowed("fal.media"));
        assert!(p.host_allowed("FAL.media."));
        assert!(
            !p.host_allowed("v3.fal.media"),
            "no wildcard for fal.media itself"
        );
        assert!(p.host_allowed("a.b.cdn.example"));
        assert!(
            !p.host_allowed("cdn.example"),
            "*.x matches subdomains only"
        );
        assert!(!p.host_allowed("evilcdn.example"));
        assert!(!p.host_allowed("fal.media.evil.example"));
    }

    #[test]
    fn private_local_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
