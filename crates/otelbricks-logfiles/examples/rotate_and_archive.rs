//! A size-rotated log file, then what a daily job does with its rotations: archive, then clean up.
//! `cargo run -p otelbricks-logfiles --example rotate_and_archive -- [DIR]` (default: a temporary directory).

use std::io::Write as _;
use std::time::Duration;

use otelbricks_logfiles::{ManageConfig, RotatingFile, archive, cleanup};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_owned(), Into::into);

    let mut file = RotatingFile::open(&dir, "app.json", 64 << 10, 3)?; // rotate at 64 KiB, keep 3
    for i in 0..5_000 {
        writeln!(file, r#"{{"level":"INFO","message":"line {i}"}}"#)?;
    }
    drop(file); // waits for the compression of the last rotation

    let config = ManageConfig {
        pattern: "app.json".into(),
        archive_after: Duration::ZERO, // a real policy: 30 days
        retention: Duration::from_secs(365 * 86_400),
        ..ManageConfig::new(&dir)
    };
    println!("archive: {:?}", archive(&config)?);
    println!("cleanup: {:?}", cleanup(&config)?);
    Ok(())
}
