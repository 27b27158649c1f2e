//! logkit (work in progress).
