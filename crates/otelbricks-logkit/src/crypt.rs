//! age (X25519) decryption of inputs, and key generation for `logkit keygen`.

use crate::error::InputError;
use std::io::{BufRead, Read};
use std::path::Path;

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

/// A new X25519 key pair: (identity file text, recipient).
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    (
        id.to_string().expose_secret().to_string(),
        id.to_public().to_string(),
    )
}
