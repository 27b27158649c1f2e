//! age (X25519) encryption of archives and decryption of inputs.

use crate::error::{InputError, ManageError};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::str::FromStr;

/// Reads the identities (`AGE-SECRET-KEY-1...` lines) of an identity file.
pub fn load_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, InputError> {
    let err = |reason: String| InputError::Identity {
        path: path.to_path_buf(),
        reason,
    };
    let file = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
        .map_err(|e| err(e.to_string()))?;
    let ids = file.into_identities().map_err(|e| err(e.to_string()))?;
    if ids.is_empty() {
        return Err(err("no identity in file".into()));
    }
    Ok(ids)
}

/// Wraps an age-encrypted (binary or ASCII-armored) stream with its decryption.
pub fn decrypt_reader<'a, R: BufRead + 'a>(
    r: R,
    identity: &Path,
) -> Result<Box<dyn Read + 'a>, InputError> {
    let ids = load_identities(identity)?;
    let armored = age::armor::ArmoredReader::new(r);
    let dec = age::Decryptor::new(armored).map_err(|e| InputError::Age(e.to_string()))?;
    let plain = dec
        .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| InputError::Age(e.to_string()))?;
    Ok(Box::new(plain))
}

/// Parses X25519 recipients (`age1...` public keys).
pub fn parse_recipients(keys: &[String]) -> Result<Vec<age::x25519::Recipient>, ManageError> {
    keys.iter()
        .map(|k| {
            age::x25519::Recipient::from_str(k.trim())
                .map_err(|e| ManageError::Config(format!("invalid age recipient {k:?}: {e}")))
        })
        .collect()
}

/// Starts an age stream to `recipients` on `w`; call `finish()` on the result.
pub fn encrypt_writer<W: Write>(
    w: W,
    recipients: &[age::x25519::Recipient],
) -> Result<age::stream::StreamWriter<W>, ManageError> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| ManageError::Encrypt(e.to_string()))?;
    enc.wrap_output(w)
        .map_err(|e| ManageError::Encrypt(e.to_string()))
}

/// A new X25519 key pair: (identity file text, recipient).
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    (
        id.to_string().expose_secret().to_string(),
        id.to_public().to_string(),
    )
}
