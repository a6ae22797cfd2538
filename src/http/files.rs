//! Static files on the WebSocket port: mapping a URL path to a file, safely.

use std::path::{Path, PathBuf};

/// The file under `root` that `url_path` names, or `None` when there is none or the
/// path tries to leave `root` (`..`, encoded `%2e%2e`, backslashes, NUL bytes, or a
/// symbolic link that points outside). A directory serves its `index.html`.
///
/// Unless `hidden` is set, a path with a segment that starts with `.` (`/.env`,
/// `/.git/config`, `/sub/.hidden/x`, encoded or not) is `None` too: such files hold
/// secrets or history that were rarely meant to be published.
pub(crate) fn resolve(root: &Path, url_path: &str, hidden: bool) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    if decoded.contains(['\\', '\0']) {
        return None;
    }
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" => continue,
            "." | ".." => return None,
            name if name.starts_with('.') && !hidden => return None,
            name => relative.push(name),
        }
    }
    let mut candidate = root.join(relative);
    if candidate.is_dir() {
        candidate.push("index.html");
    }
    // Resolving links last catches every way out, including links inside the tree.
    let real = candidate.canonicalize().ok()?;
    let root = root.canonicalize().ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `Content-Type` for a file, by extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2E/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/index.HTML")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("app.js")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("blob")), "application/octet-stream");
    }
}
