//! `age` (X25519) encryption of archives (feature `age`).

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use crate::Error;

/// The archive encryption of a configuration: `None` when it has no recipients.
pub(crate) struct Encrypt {
    #[cfg(feature = "age")]
    recipients: Vec<age::x25519::Recipient>,
}

impl Encrypt {
    /// Parses the recipients; `Ok(None)` when there are none.
    pub(crate) fn new(keys: &[String]) -> Result<Option<Self>, Error> {
        if keys.is_empty() {
            return Ok(None);
        }
        #[cfg(feature = "age")]
        {
            parse_recipients(keys).map(|recipients| Some(Encrypt { recipients }))
        }
        #[cfg(not(feature = "age"))]
        Err(Error::NoEncryption)
    }

    /// Copies `input` encrypted into `out`; returns the file once everything is written.
    pub(crate) fn copy(
        &self,
        input: &mut impl Read,
        out: BufWriter<File>,
        src: &Path,
        tmp: &Path,
    ) -> Result<File, Error> {
        #[cfg(feature = "age")]
        {
            let enc = age::Encryptor::with_recipients(
                self.recipients.iter().map(|r| r as &dyn age::Recipient),
            )
            .map_err(Error::Encrypt)?;
            let mut w = enc.wrap_output(out).map_err(Error::io("encrypt", tmp))?;
            std::io::copy(input, &mut w).map_err(Error::io("encrypt", src))?;
            let bw = w.finish().map_err(Error::io("encrypt", tmp))?;
            bw.into_inner()
                .map_err(|e| Error::io("write", tmp)(e.into_error()))
        }
        #[cfg(not(feature = "age"))]
        {
            let _ = (input, out, src, tmp);
            Err(Error::NoEncryption)
        }
    }
}

/// Parses `age` X25519 recipients (`age1...` public keys).
#[cfg(feature = "age")]
pub fn parse_recipients(keys: &[String]) -> Result<Vec<age::x25519::Recipient>, Error> {
    keys.iter()
        .map(|k| {
            k.trim()
                .parse::<age::x25519::Recipient>()
                .map_err(|e| Error::Recipient {
                    key: k.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Checks that every key is an `age` X25519 recipient (`age1...`), for configuration checks at
/// start-up. Without the `age` feature any key is refused with [`Error::NoEncryption`].
pub fn check_recipients(keys: &[String]) -> Result<(), Error> {
    Encrypt::new(keys).map(drop)
}
