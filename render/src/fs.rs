//! Atomic file writing: Envoy and the invoker watch what render writes and
//! notice renames, never in-place writes, and must never read half a file.

use std::path::Path;

/// Writes a file by writing a temporary file beside it and renaming it over
/// the old one: Envoy and the invoker notice renames, and never see half a
/// file. Returns whether the content changed.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<bool> {
    write_bytes_atomically(path, text.as_bytes())
}

/// [`write_atomically`] for any content.
pub fn write_bytes_atomically(path: &Path, content: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Outside the watched ECDS folder's file name, so a half-written temp
    // file is never taken for the config.
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}
