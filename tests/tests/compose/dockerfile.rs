//! The image the compose file builds: the `Dockerfile` (multi-stage, pinned, non-root, a Rust new enough for
//! the workspace, a locked build) and `.dockerignore` (no build outputs, git data, logs or env files).

use std::collections::BTreeSet;

use stack_tests::rules::{assert_caught, assert_clean, read};

use crate::services::image_tag;

/// Logical lines (backslash continuations joined), comments dropped.
fn dockerfile_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn instruction<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (head, rest) = line.split_once(char::is_whitespace)?;
    head.eq_ignore_ascii_case(name).then_some(rest.trim())
}

/// `FROM image [AS name]` lines: (image, stage name).
fn stages(text: &str) -> Vec<(String, Option<String>)> {
    dockerfile_lines(text)
        .iter()
        .filter_map(|l| instruction(l, "FROM"))
        .map(|rest| {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or("").to_string();
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string());
            (image, name)
        })
        .collect()
}

pub(crate) fn final_stage(text: &str) -> Vec<String> {
    let lines = dockerfile_lines(text);
    let start = lines
        .iter()
        .rposition(|l| instruction(l, "FROM").is_some())
        .unwrap_or(0);
    lines[start..].to_vec()
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = it.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

fn workspace_rust_version(cargo_toml: &str) -> Option<(u32, u32, u32)> {
    cargo_toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|r| r.split('"').nth(1))
        .and_then(parse_version)
}

/// Debian release of an image tag: `rust:1.95.0-slim-trixie` -> 13, `debian:13.4-slim` -> 13.
fn debian_release(image: &str) -> Option<u32> {
    const CODENAMES: [(&str, u32); 3] = [("bullseye", 11), ("bookworm", 12), ("trixie", 13)];
    let tag = image_tag(image)?;
    if let Some((_, n)) = CODENAMES.iter().find(|(c, _)| tag.contains(c)) {
        return Some(*n);
    }
    if image.starts_with("debian:") {
        return tag.split(['.', '-']).next()?.parse().ok();
    }
    None
}

fn dockerfile_violations(dockerfile: &str, cargo_toml: &str) -> Vec<String> {
    let mut v = Vec::new();
    let stages = stages(dockerfile);
    let names: BTreeSet<String> = stages.iter().filter_map(|(_, n)| n.clone()).collect();
    if stages.len() < 2 {
        v.push("Dockerfile is not multi-stage".into());
    }
    for (image, _) in &stages {
        if names.contains(image) {
            continue;
        }
        match image_tag(image) {
            None => v.push(format!("FROM {image}: untagged")),
            Some("latest") => v.push(format!("FROM {image}: latest")),
            Some(t) if !t.chars().any(|c| c.is_ascii_digit()) => {
                v.push(format!("FROM {image}: tag names no version"))
            }
            _ => {}
        }
    }
    // The builder: an official rust image at least as new as the workspace's rust-version.
    let builder = stages.iter().find(|(i, _)| i.starts_with("rust:"));
    let want = workspace_rust_version(cargo_toml);
    match (builder, want) {
        (None, _) => v.push("no FROM rust:<version> builder stage".into()),
        (_, None) => v.push("workspace Cargo.toml has no rust-version".into()),
        (Some((image, _)), Some(want)) => {
            let have = image_tag(image)
                .and_then(|t| t.split('-').next())
                .and_then(parse_version);
            match have {
                Some(have) if have >= want => {}
                have => v.push(format!(
                    "{image}: Rust {have:?} is older than the workspace rust-version {want:?}"
                )),
            }
        }
    }
    // glibc: the runtime's Debian release is the builder's or newer.
    let runtime = stages.last().map(|(i, _)| i.as_str()).unwrap_or("");
    match (builder.and_then(|(i, _)| debian_release(i)), debian_release(runtime)) {
        (Some(b), Some(r)) if r >= b => {}
        (b, r) => v.push(format!(
            "runtime {runtime} (Debian {r:?}) is older than the builder's Debian {b:?}, or unknown: \
             the binary may need a newer glibc"
        )),
    }
    let all = dockerfile_lines(dockerfile);
    if !all.iter().any(|l| {
        l.contains("cargo build")
            && l.contains("--release")
            && l.contains("--locked")
            && l.contains("-p image2model")
    }) {
        v.push("no `cargo build --release -p image2model --locked`".into());
    }
    let last = final_stage(dockerfile);
    // image2model refuses to start without a CA store (rustls with the system roots: https providers and
    // OTLP endpoints), and slim images have none unless ca-certificates is installed.
    if !last
        .iter()
        .any(|l| l.contains("apt-get install") && l.contains("ca-certificates"))
    {
        v.push(
            "runtime stage does not install ca-certificates (image2model exits without a CA store)"
                .into(),
        );
    }
    match last.iter().rev().find_map(|l| instruction(l, "USER")) {
        None => v.push("runtime stage runs as root (no USER)".into()),
        Some(u) if matches!(u.split(':').next(), Some("root") | Some("0")) => {
            v.push(format!("runtime stage runs as root (USER {u})"))
        }
        Some(_) => {}
    }
    match last.iter().find_map(|l| instruction(l, "HEALTHCHECK")) {
        None => v.push("runtime stage has no HEALTHCHECK".into()),
        Some(h) if !h.contains("/ready") => {
            v.push(format!("HEALTHCHECK {h} does not probe /ready"))
        }
        Some(_) => {}
    }
    let exposed: BTreeSet<&str> = last
        .iter()
        .filter_map(|l| instruction(l, "EXPOSE"))
        .flat_map(str::split_whitespace)
        .collect();
    for port in ["8080", "9464"] {
        if !exposed.contains(port) {
            v.push(format!("runtime stage does not EXPOSE {port}"));
        }
    }
    v
}

/// `*` glob of one path segment, as `.dockerignore` patterns use it.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

fn dockerignore_violations(text: &str) -> Vec<String> {
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    [
        "target",
        "target-compose",
        "target-image2model",
        ".git",
        "data",
        "logs",
        ".env",
    ]
    .iter()
    .filter(|path| !patterns.iter().any(|p| glob(p, path)))
    .map(|path| format!(".dockerignore does not exclude {path}"))
    .collect()
}

#[test]
fn dockerfile_is_multi_stage_pinned_non_root_and_its_rust_satisfies_the_workspace_rust_version() {
    assert_clean(
        "Dockerfile",
        dockerfile_violations(&read("Dockerfile"), &read("Cargo.toml")),
    );
}

#[test]
fn dockerignore_keeps_build_outputs_git_data_logs_and_env_out_of_the_context() {
    assert_clean(
        ".dockerignore",
        dockerignore_violations(&read(".dockerignore")),
    );
}

#[test]
fn dockerfile_rule_rejects_old_rust_latest_bases_root_older_runtime_and_unlocked_builds() {
    let real = read("Dockerfile");
    let cargo = read("Cargo.toml");
    let cases = [
        (
            real.replace("rust:1.95.0-slim-trixie", "rust:1.85.0-slim-trixie"),
            "older than the workspace rust-version",
        ),
        (
            real.replace("debian:13.4-slim", "debian:latest"),
            "FROM debian:latest: latest",
        ),
        (
            real.replace("debian:13.4-slim", "debian:12.11-slim"),
            "may need a newer glibc",
        ),
        (
            real.replace("USER 10001:10001", "USER root"),
            "runs as root",
        ),
        (real.replace(" --locked", ""), "--locked"),
        (
            real.replace("HEALTHCHECK", "# HEALTHCHECK"),
            "no HEALTHCHECK",
        ),
        (
            real.replace("EXPOSE 8080 9464", "EXPOSE 8080"),
            "EXPOSE 9464",
        ),
        (real.replace("ca-certificates ", ""), "ca-certificates"),
    ];
    for (text, needle) in cases {
        assert_ne!(text, real, "the mutation for {needle:?} changed nothing");
        assert_caught(&dockerfile_violations(&text, &cargo), needle);
    }
    let newer = cargo.replace("rust-version = \"1.88\"", "rust-version = \"1.96\"");
    assert_ne!(newer, cargo);
    assert_caught(
        &dockerfile_violations(&real, &newer),
        "older than the workspace rust-version",
    );
}

#[test]
fn dockerignore_rule_rejects_a_context_with_target_dirs_or_git() {
    let v = dockerignore_violations("target\n.git\ndata\nlogs\n.env\n");
    assert_caught(&v, "target-compose");
    let v = dockerignore_violations("target*\ndata\nlogs\n.env\n");
    assert_caught(&v, ".git");
}
