//! `$RAMPART_HOME` (default `~/.rampart`, mode 0700) and the admin token kept in it.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `$RAMPART_HOME`, or `~/.rampart`.
pub fn rampart_home() -> PathBuf {
    if let Some(h) = std::env::var_os("RAMPART_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".rampart")
}

/// Creates `dir` (and parents) with mode 0700, tightening an existing one.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The admin token: `RAMPART_TOKEN`, else `$RAMPART_HOME/token` (a regular file, trimmed),
/// else 32 random bytes as hex, written atomically with mode 0600 before the server starts.
pub fn admin_token(home: &Path) -> io::Result<String> {
    if let Ok(t) = std::env::var("RAMPART_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let path = home.join("token");
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_file() {
            return Err(io::Error::other(format!(
                "{} must be a regular file (not a symlink)",
                path.display()
            )));
        }
        let t = std::fs::read_to_string(&path)?.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    ensure_private_dir(home)?;
    write_private_atomically(&path, token.as_bytes(), true)?;
    Ok(token)
}

/// Writes `bytes` to `path` through a temporary file and a rename, mode 0600, so a reader
/// sees the old file or the new one, whole; with `sync`, the data reaches the disk before
/// the rename.
pub fn write_private_atomically(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

/// Constant-time comparison of two tokens.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
    }
}
