//! The HTTP phase of a connection, as pure functions: parse the request head, route it,
//! apply the policy (Origin, authentication hook), check the Upgrade, and write the
//! response. The connection thread does the I/O (`connection::http_phase`).
//!
//! ```text
//!  request.rs        bytes → Request (httparse), the head's length and limits
//!  policy.rs         Request → Route (WebSocket, health, file, ...), Origin check, auth hook
//!  upgrade_check.rs  Request → Upgrade (RFC 6455 §4.2.1 checks, Sec-WebSocket-Accept) → 101
//!  extensions.rs    Sec-WebSocket-Extensions → permessage-deflate parameters (RFC 7692)
//!  files.rs          URL path → file under the static directory, safely; its Content-Type
//!  response.rs       Rejection → HTTP error response; plain response heads
//! ```

mod extensions;
mod files;
mod policy;
mod request;
mod response;
mod upgrade_check;

pub(crate) use extensions::{DeflateParams, DeflateSettings};
pub(crate) use files::content_type;
pub use policy::AppData;
pub(crate) use policy::{unusable_origin, Policy, Route};
pub use request::Request;
pub(crate) use request::{head_len, log_safe};
pub use response::Rejection;
pub(crate) use response::{error_response, response_head};
pub use upgrade_check::{accept_key, websocket_key};
pub(crate) use upgrade_check::{check_upgrade, switching_protocols};
