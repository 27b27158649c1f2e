//! What one client, one request and the whole instance may cost: per-client rate limits, the job
//! quota, the queue bound, input sizes, server timeouts and the connection limit, retention, and
//! the download policy for model files. Every limit has a default that lets `image2model loadgen`
//! run at its usual rates, and an `IMAGE2MODEL_*` variable.
//!
//! Rate limits are token buckets (GCRA, the `governor` crate) keyed by the client's address:
//! IPv4 addresses as they are, IPv6 addresses by their /64 prefix (one host usually owns a
//! whole /64). Behind a reverse proxy every client shares the proxy's address: give the proxy
//! the per-client limits, or raise these.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// `image2model serve` limits (flattened into [`crate::ServeConfig`]).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsConfig {
    /// API requests per second per client address (token bucket; 0: no limit).
    #[arg(
        id = "api_rate_limit",
        long = "rate-limit",
        value_name = "RATE",
        env = "IMAGE2MODEL_RATE_LIMIT",
        default_value_t = 50
    )]
    pub rate_limit: u32,
    /// Requests a client may send at once above its rate (bucket size).
    #[arg(long, env = "IMAGE2MODEL_RATE_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,
    /// Jobs per second a client may create (a batch of n files costs n; 0: no limit).
    #[arg(long, env = "IMAGE2MODEL_JOB_RATE_LIMIT", default_value_t = 20)]
    pub job_rate_limit: u32,
    /// Jobs a client may create at once above its job rate (bucket size; at least the batch size).
    #[arg(long, env = "IMAGE2MODEL_JOB_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub job_burst: u32,
    /// Most jobs waiting in the queue; beyond it new jobs get 503 with `Retry-After`.
    #[arg(long, env = "IMAGE2MODEL_MAX_QUEUED_JOBS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_queued_jobs: u32,
    /// Largest `options` object of a job or batch, in bytes of JSON.
    #[arg(long, env = "IMAGE2MODEL_MAX_OPTIONS_BYTES", default_value_t = 16 * 1024)]
    pub max_options_bytes: usize,
    /// Most keys of an `options` object.
    #[arg(long, env = "IMAGE2MODEL_MAX_OPTIONS_KEYS", default_value_t = 32)]
    pub max_options_keys: usize,
    /// Longest upload file name, in bytes.
    #[arg(long, env = "IMAGE2MODEL_MAX_FILENAME_BYTES", default_value_t = 255, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_filename_bytes: u32,
    /// Time a client gets to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "IMAGE2MODEL_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Time a client gets to send a whole request body (uploads included).
    #[arg(long, env = "IMAGE2MODEL_BODY_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub body_timeout: Duration,
    /// Most open client connections (capped to leave room under the process's file limit);
    /// more get 503 and are closed.
    #[arg(long, env = "IMAGE2MODEL_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Uploads, finished jobs, their models and batches older than this are deleted.
    #[arg(long, env = "IMAGE2MODEL_RETENTION", default_value = "7d", value_parser = parse_positive_duration)]
    pub retention: Duration,
    /// Time between two retention sweeps.
    #[arg(long, env = "IMAGE2MODEL_SWEEP_INTERVAL", default_value = "10m", value_parser = parse_positive_duration)]
    pub sweep_interval: Duration,
    /// `/ready` fails and uploads get 503 when the data directory's file system has less free space.
    #[arg(long, env = "IMAGE2MODEL_MIN_FREE_DISK_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub min_free_disk_bytes: u64,
    /// Hosts model files may be downloaded from when the provider names another origin than its
    /// own: comma-separated, `host` or `*.domain`; https only, never private or loopback addresses.
    #[arg(
        long,
        env = "IMAGE2MODEL_DOWNLOAD_HOSTS",
        default_value = "fal.media,*.fal.media",
        value_delimiter = ','
    )]
    pub download_hosts: Vec<String>,
    /// Lets downloads from the allowed hosts use http:// and private or loopback addresses
    /// (development and tests, e.g. a simulator on another loopback port).
    #[arg(long, env = "IMAGE2MODEL_DOWNLOAD_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub download_allow_private: bool,
    /// Largest model file accepted from the provider, in bytes.
    #[arg(long, env = "IMAGE2MODEL_MAX_MODEL_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_model_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            rate_limit: 50,
            rate_burst: 100,
            job_rate_limit: 20,
            job_burst: 100,
            max_queued_jobs: 1000,
            max_options_bytes: 16 * 1024,
            max_options_keys: 32,
            max_filename_bytes: 255,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 256,
            retention: Duration::from_secs(7 * 24 * 3600),
            sweep_interval: Duration::from_secs(600),
            min_free_disk_bytes: 256 * 1024 * 1024,
            download_hosts: vec!["fal.media".into(), "*.fal.media".into()],
            download_allow_private: false,
            max_model_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Parses a humantime duration that is not zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        Err("must be more than 0".into())
    } else {
        Ok(d)
    }
}

/// The rate-limit key of a client: its IPv4 address, or the /64 prefix of its IPv6 address.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The key of a request without a peer address (in-process tests through `oneshot`).
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The client's address from the connection (`ConnectInfo`), else [`UNKNOWN_CLIENT`].
pub fn client_of<B>(req: &http::Request<B>) -> IpAddr {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| client_key(c.0.ip()))
        .unwrap_or(UNKNOWN_CLIENT)
}

type Keyed = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// A per-client token bucket; `None` inside when the rate is 0 (no limit).
pub struct ClientLimiter {
    limiter: Option<Keyed>,
    clock: DefaultClock,
    rate: u32,
}

impl std::fmt::Debug for ClientLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLimiter")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl ClientLimiter {
    /// `rate` per second per client, `burst` at once; rate 0: everything passes.
    pub fn new(rate: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(rate).map(|r| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
        });
        ClientLimiter {
            limiter,
            clock: DefaultClock::default(),
            rate,
        }
    }

    /// Takes `n` tokens of `client`'s bucket; `Err(wait)` when it has not enough (also when `n`
    /// exceeds the bucket: then the wait is the time the rate needs for `n`).
    pub fn check(&self, client: IpAddr, n: u32) -> Result<(), Duration> {
        let (Some(l), Some(n)) = (&self.limiter, NonZeroU32::new(n)) else {
            return Ok(());
        };
        match l.check_key_n(&client, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            Err(_) => Err(Duration::from_secs_f64(
                f64::from(n.get()) / f64::from(self.rate.max(1)),
            )),
        }
    }

    /// Forgets clients whose bucket is full again (memory stays bounded by recent clients).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Clients remembered now.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

/// Whole seconds for a `Retry-After` header: at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// `s` cut to at most `max` bytes (on a character boundary), marked with the original length
/// when cut: client-controlled text in responses, log fields and span attributes stays small.
pub fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}… ({} bytes)", &s[..end], s.len()))
}

/// Longest client-controlled value (an id, a file name) echoed in a response or a log field.
pub const ECHO_MAX: usize = 128;

/// The soft limit of open files of this process, if known.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// File descriptors kept free for everything but client connections (database, uploads,
/// results, the provider client, the admin listener and the telemetry exporters).
pub const RESERVED_FDS: u64 = 64;

/// `configured` connections, capped so that at least [`RESERVED_FDS`] descriptors stay free
/// (and at least 1).
pub fn effective_max_connections(configured: u32, fd_limit: Option<u64>) -> u32 {
    match fd_limit {
        Some(n) => {
            let room = n.saturating_sub(RESERVED_FDS).max(1);
            u64::from(configured).min(room) as u32
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_not_affected() {
        let l = ClientLimiter::new(10, 3);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(l.check(a, 1).is_ok());
        }
        let wait = l.check(a, 1).expect_err("bucket empty");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(l.check(b, 1).is_ok(), "another client has its own bucket");
        assert!(l.check(b, 4).is_err(), "more than the bucket at once");
        assert!(
            ClientLimiter::new(0, 1).check(a, 1000).is_ok(),
            "rate 0: no limit"
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "10.1.2.3".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_and_says_how_long_it_was() {
        assert_eq!(bounded("short", 10), "short");
        let s = "é".repeat(100);
        let b = bounded(&s, 5);
        assert!(b.starts_with("éé") && b.ends_with("(200 bytes)"), "{b}");
        assert!(b.len() < 30);
    }

    #[test]
    fn connections_leave_room_under_the_file_limit() {
        assert_eq!(effective_max_connections(256, Some(128)), 64);
        assert_eq!(effective_max_connections(256, Some(65536)), 256);
        assert_eq!(effective_max_connections(256, Some(10)), 1);
        assert_eq!(effective_max_connections(256, None), 256);
    }
}
