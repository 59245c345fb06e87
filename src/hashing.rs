//! SHA-256 of files, streamed (model files can be gigabytes, image sets tens of thousands of files).

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// SHA-256 digest of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let ctx = || format!("could not read {}", path.display());
    let mut file = std::fs::File::open(path).with_context(ctx)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(ctx)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Lower-case hex SHA-256 of a file's bytes.
pub fn sha256_file_hex(path: &Path) -> Result<String> {
    Ok(hex::encode(sha256_file(path)?))
}
