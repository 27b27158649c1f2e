//! The `logkit` command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use otelbricks_logfiles::{self as manage, ManageConfig};
use otelbricks_logkit::terminal::escape;
use otelbricks_logkit::{Options, Section, timestamp};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "logkit",
    version,
    about = "Analyse, rotate and archive JSON request logs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Error counts by error_type, top 10, per-minute timeline with request ids.
    Errors(AnalyzeArgs),
    /// Per-endpoint latency (count, avg, min, max, p50, p95, p99) and the slowest requests.
    Perf(AnalyzeArgs),
    /// The daily summary (requests, successes, failures, users, endpoints, status codes,
    /// errors, performance), per day when the logs span several days.
    Summary(AnalyzeArgs),
    /// Rotate oversized logs, finish interrupted compressions, keep the newest N.
    Rotate(ManageArgs),
    /// Move compressed logs older than --archive-after into archive/ (optionally age-encrypted).
    Archive(ManageArgs),
    /// Delete archives older than --retention.
    Cleanup(ManageArgs),
    /// Print a new age X25519 identity (secret) on stdout and its recipient on stderr.
    Keygen,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Files, directories, globs, or `-` for stdin (default: stdin). Plain, .gz or .age.
    paths: Vec<String>,
    /// Print the JSON report (schema in the crate README).
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Only lines at or after this time (RFC 3339, a date, or a duration ago like `2h`).
    #[arg(long)]
    since: Option<String>,
    /// Only lines before this time.
    #[arg(long)]
    until: Option<String>,
    /// age identity file for encrypted (.age) inputs.
    #[arg(long, short = 'i', value_name = "FILE", env = "LOGKIT_IDENTITY")]
    identity: Option<PathBuf>,
    /// Slow-request threshold in seconds.
    #[arg(long, default_value_t = 5.0)]
    slow_threshold: f64,
    /// Parser threads (default: number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Read plain files with pread instead of mapping them (for files that may be
    /// truncated in place while being analysed, e.g. by logrotate's copytruncate).
    #[arg(long)]
    no_mmap: bool,
}

#[derive(Args)]
struct ManageArgs {
    /// Log directory.
    #[arg(long, default_value = "logs", env = "LOGKIT_DIR")]
    dir: PathBuf,
    /// Active log files to manage (glob on file names).
    #[arg(long, default_value = "*.json")]
    pattern: String,
    /// Rotate an active file larger than this (bytes; suffixes K, M, G).
    #[arg(long, default_value = "100M", value_parser = parse_size)]
    max_size: u64,
    /// Compressed rotations kept per file.
    #[arg(long, default_value_t = 10)]
    keep: usize,
    /// Archive compressed logs older than this (humantime, e.g. `30days`).
    #[arg(long, default_value = "30days", value_parser = humantime::parse_duration)]
    archive_after: Duration,
    /// Delete archives older than this.
    #[arg(long, default_value = "365days", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// Encrypt archives to this age recipient (repeatable).
    #[arg(long = "recipient", short = 'r', value_name = "AGE1...")]
    recipients: Vec<String>,
    /// A rotated file untouched for this long is taken as abandoned by its writer.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    settle: Duration,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match s[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                "B" => 1,
                other => return Err(format!("unknown size suffix {other:?}")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mul)
        .map_err(|e| format!("invalid size {s:?}: {e}"))
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn run_analysis(a: AnalyzeArgs, section: Section) -> Result<()> {
    let now = now_micros();
    let bound = |name: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(s) => timestamp::parse_bound(s, now).map(Some).with_context(|| {
                format!("--{name} {s:?}: expected an RFC 3339 time, a date, or a duration like 2h")
            }),
        }
    };
    let mut opts = Options {
        since: bound("since", &a.since)?,
        until: bound("until", &a.until)?,
        slow_threshold: a.slow_threshold,
        identity: a.identity.clone(),
        progress: !a.no_progress && std::io::stderr().is_terminal(),
        mmap: !a.no_mmap,
        ..Options::default()
    };
    if let Some(t) = a.threads {
        opts.threads = t.max(1);
    }
    let report = otelbricks_logkit::analyze(&a.paths, &opts).context("analysis failed")?;
    // Buffered: stdout alone is line-buffered, one write(2) per line of pretty JSON.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if a.json {
        report
            .write_json(section, &mut out)
            .context("writing JSON")?;
        writeln!(out)?;
    } else {
        out.write_all(report.to_text(section).as_bytes())?;
    }
    out.flush().context("writing the report")?;
    if let Some(path) = &a.html {
        std::fs::write(path, otelbricks_logkit::html::render(&report))
            .with_context(|| format!("writing HTML report {}", path.display()))?;
    }
    // As above: the process exits next, the operating system reclaims the memory at once.
    std::mem::forget(report);
    Ok(())
}

/// A path for the terminal: its control characters escaped (file names are anyone's).
fn shown(p: &std::path::Path) -> String {
    escape(&p.display().to_string()).into_owned()
}

fn manage_config(m: &ManageArgs) -> ManageConfig {
    ManageConfig {
        dir: m.dir.clone(),
        pattern: m.pattern.clone(),
        max_size: m.max_size,
        keep: m.keep,
        archive_after: m.archive_after,
        retention: m.retention,
        recipients: m.recipients.clone(),
        settle: m.settle,
        ..ManageConfig::default()
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Errors(a) => run_analysis(a, Section::Errors),
        Cmd::Perf(a) => run_analysis(a, Section::Perf),
        Cmd::Summary(a) => run_analysis(a, Section::Summary),
        Cmd::Rotate(m) => {
            let r = manage::rotate(&manage_config(&m))
                .with_context(|| format!("rotating logs in {}", m.dir.display()))?;
            for p in &r.rotated {
                println!("rotated {}", shown(p));
            }
            for p in &r.compressed {
                println!("compressed {}", shown(p));
            }
            for p in &r.removed {
                println!("removed {}", shown(p));
            }
            Ok(())
        }
        Cmd::Archive(m) => {
            let moved = manage::archive(&manage_config(&m))
                .with_context(|| format!("archiving logs in {}", m.dir.display()))?;
            for p in moved {
                println!("archived {}", shown(&p));
            }
            Ok(())
        }
        Cmd::Cleanup(m) => {
            let removed = manage::cleanup(&manage_config(&m))
                .with_context(|| format!("cleaning archives in {}", m.dir.display()))?;
            for p in removed {
                println!("deleted {}", shown(&p));
            }
            Ok(())
        }
        Cmd::Keygen => {
            let (secret, public) = otelbricks_logkit::crypt::generate_identity();
            println!("# public key: {public}\n{secret}");
            eprintln!("Public key: {public}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("logkit: error: {}", escape(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
