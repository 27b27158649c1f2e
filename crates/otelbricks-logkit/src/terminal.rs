//! Text for a terminal: values from the logs (paths, messages, user and request ids, file names)
//! are client-controlled, so every human-readable output shows their control characters as
//! escapes instead of sending them to the terminal (an ESC could recolour, move the cursor or
//! retitle the window; CR and newlines could forge report lines).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: control characters (C0 including newline, tab
/// and ESC, DEL, C1) and the Unicode bidirectional overrides and isolates, which reorder what
/// is displayed.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character written as its Rust escape (`\n`, `\r`, `\t`, `\u{1b}`, …);
/// borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("/api/v1/jobs/ü"), "/api/v1/jobs/ü");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\u{1b}[2Jb\r\nc\td\u{7f}e\u{9b}f\u{202e}g"),
            "a\\u{1b}[2Jb\\r\\nc\\td\\u{7f}e\\u{9b}f\\u{202e}g"
        );
    }
}
