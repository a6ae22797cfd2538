//! Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`).

use crate::policy::Policy;
use crate::Request;

/// Feeds arbitrary bytes to the request parser, the router and the Upgrade checks.
pub fn request_head(data: &[u8]) {
    let Some(len) = crate::http::head_len(data) else { return };
    let peer = "127.0.0.1:1".parse().expect("a valid address");
    let request = match Request::parse(&data[..len], peer, None) {
        Ok(request) => request,
        Err(reject) => return check_reject(&reject),
    };
    let policy = Policy { websocket_paths: vec!["/ws".into()], same_origin: true, ..Policy::default() };
    let _ = policy.route(&request);
    let _ = policy.check_origin(&request);
    let _ = format!("{request:?}");
    match crate::http::check_upgrade(&request, &["chat".to_owned(), "v2".to_owned()]) {
        Ok(upgrade) => {
            let response = crate::http::switching_protocols(&upgrade);
            assert!(response.starts_with("HTTP/1.1 101 ") && response.ends_with("\r\n\r\n"));
            assert_eq!(upgrade.accept.len(), 28, "SHA-1 digests are 28 characters of base64");
        }
        Err(reject) => check_reject(&reject),
    }
}

fn check_reject(reject: &crate::http::Reject) {
    assert!((400..600).contains(&reject.status));
    let response = crate::http::error_response(reject);
    let (head, body) = response.split_once("\r\n\r\n").expect("a blank line after the head");
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
}
