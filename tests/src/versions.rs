//! `stack/versions.env`: every component version of the stack in one file, read by the build scripts and
//! checked against `docker-compose.yml`, the `Dockerfile` and `otel-collector/go.mod` by the tests.

use std::collections::BTreeMap;

use crate::error::StackError;
use crate::paths::repo_root;

/// The file, relative to the repository root.
pub const FILE: &str = "stack/versions.env";

/// The `KEY=value` pairs of a versions file.
#[derive(Debug, Clone, PartialEq)]
pub struct Versions(BTreeMap<String, String>);

impl Versions {
    /// Reads and parses [`FILE`].
    pub fn load() -> Result<Versions, StackError> {
        let path = repo_root().join(FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(StackError::io(format!("reading {}", path.display())))?;
        Versions::parse(&text).map_err(|reason| StackError::Render {
            file: FILE.into(),
            reason,
        })
    }

    /// Parses `KEY=value` lines (blank lines and `#` comments skipped). Anything a shell would read
    /// differently from this parser (quotes, spaces, `$`, `export`) is rejected, as is a repeated key.
    pub fn parse(text: &str) -> Result<Versions, String> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| bad("not KEY=value"))?;
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(bad("the key is not UPPER_CASE"));
            }
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(bad("the value is not a plain version"));
            }
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(bad("the key is repeated"));
            }
        }
        Ok(Versions(map))
    }

    /// The value of `key`, if the file has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy with `key` set to `value` (for the tests' deliberately broken copies).
    pub fn with(&self, key: &str, value: &str) -> Versions {
        let mut copy = self.clone();
        copy.0.insert(key.to_string(), value.to_string());
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines_parse_and_comments_and_blanks_are_skipped() {
        let v = Versions::parse("# c\n\nA_B=1.2.3\nC=v0.316.0-slim\n").expect("parses");
        assert_eq!(v.get("A_B"), Some("1.2.3"));
        assert_eq!(v.get("C"), Some("v0.316.0-slim"));
        assert_eq!(v.iter().count(), 2);
    }

    #[test]
    fn shell_syntax_this_parser_would_misread_is_rejected() {
        for bad in [
            "A = 1",
            "export A=1",
            "A=\"1\"",
            "A=$B",
            "a=1",
            "A=",
            "A",
            "A=1\nA=2",
        ] {
            assert!(Versions::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
