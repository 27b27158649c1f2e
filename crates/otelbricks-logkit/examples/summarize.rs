//! The library behind `logkit summary`: analyse log files (plain, `.gz`, `age`), directories or globs.
//! `cargo run --release -p otelbricks-logkit --example summarize -- [PATHS...]` (default: `logs`).

use otelbricks_logkit::{Options, Section, analyze};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths.push("logs".into());
    }
    let report = analyze(&paths, &Options::default())?;
    let all = &report.overall;
    println!(
        "{} requests, {} failed, {} users",
        all.total_requests, all.failed_requests, all.unique_users
    );
    println!("{:#}", report.to_json(Section::Summary));
    Ok(())
}
