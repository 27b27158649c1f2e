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

/// Longest age header read (the header lists one stanza per recipient, about 150 bytes each).
/// The age crate's header parser takes time quadratic in the header's length (ten minutes for a
/// 10 MB header), so a longer header is refused before it is handed over.
pub const MAX_AGE_HEADER: u64 = 64 * 1024;

/// Wraps an age-encrypted (binary or ASCII-armored) stream with its decryption.
pub fn decrypt_reader<'a, R: BufRead + 'a>(
    r: R,
    identity: &Path,
) -> Result<Box<dyn Read + 'a>, InputError> {
    let ids = load_identities(identity)?;
    let mut armored = age::armor::ArmoredReader::new(r);
    let header = read_header(&mut armored)?;
    let dec = age::Decryptor::new(std::io::Cursor::new(header).chain(armored))
        .map_err(|e| InputError::Age(e.to_string()))?;
    let plain = dec
        .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| InputError::Age(e.to_string()))?;
    Ok(Box::new(plain))
}

/// The header of an age stream: its lines up to and including the `--- ` (MAC) line, at most
/// [`MAX_AGE_HEADER`] bytes. At end of input, what was read (age then names what is missing).
fn read_header<R: BufRead>(r: &mut R) -> Result<Vec<u8>, InputError> {
    let mut header = Vec::new();
    loop {
        let start = header.len();
        let left = MAX_AGE_HEADER.saturating_sub(start as u64);
        let n = Read::take(&mut *r, left)
            .read_until(b'\n', &mut header)
            .map_err(InputError::Io)?;
        if n == 0 || (header[start..].starts_with(b"--- ") && header.ends_with(b"\n")) {
            return Ok(header);
        }
        if header.len() as u64 >= MAX_AGE_HEADER {
            return Err(InputError::Age(format!(
                "the age header is longer than {} KiB (not an archive written by logkit or \
                 otelbricks-logfiles); refused",
                MAX_AGE_HEADER / 1024
            )));
        }
    }
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
