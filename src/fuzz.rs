//! Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`).

/// Feeds arbitrary bytes to the request-head reader and the Upgrade checks.
pub fn request_head(data: &[u8]) {
    let subprotocols = ["chat".to_owned(), "v2".to_owned()];
    let Some(len) = crate::http::head_len(data) else { return };
    match crate::http::parse_upgrade(&data[..len], &subprotocols) {
        Ok(upgrade) => {
            let response = crate::http::switching_protocols(&upgrade);
            assert!(response.starts_with("HTTP/1.1 101 ") && response.ends_with("\r\n\r\n"));
            assert_eq!(upgrade.accept.len(), 28, "SHA-1 digests are 28 characters of base64");
        }
        Err(reject) => {
            let response = crate::http::error_response(&reject);
            assert!((400..600).contains(&reject.status));
            assert!(!response.contains("\r\n\r\n\r\n"), "header injection: {response:?}");
        }
    }
}
