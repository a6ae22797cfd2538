//! The TLS setters of [`ConfigBuilder`]: certificates, SNI, client certificates,
//! versions, renewal, and the plain `ws://` opt-in.

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigBuilder;
use crate::tls::{ClientAuth, DefaultIdentity, PemPair};

/// TLS settings.
impl ConfigBuilder {
    /// The TLS identity: a PEM file with the certificate chain (leaf first, then any
    /// intermediates: certbot's `fullchain.pem`) and a PEM file with its private key
    /// (PKCS#8, PKCS#1/RSA or SEC1/EC). Clients that send no server name (SNI), or one
    /// that no [`sni_pem_files`](Self::sni_pem_files) entry covers, get this certificate.
    ///
    /// Required unless [`development_certificate`](Self::development_certificate) or
    /// [`plain_ws_behind_proxy`](Self::plain_ws_behind_proxy); there is no default. Both files are read and checked by [`build`](Self::build), and
    /// watched for renewal afterwards (see [`tls_reload_interval`](Self::tls_reload_interval)).
    pub fn tls_pem_files(mut self, cert_chain: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> Self {
        self.tls.default = Some(DefaultIdentity::Files(PemPair { cert: cert_chain.into(), key: private_key.into() }));
        self
    }

    /// Serves a development certificate from `dir`, for trying things on this machine:
    /// [`build`](Self::build) makes a local CA (`ca.pem`) and a certificate for
    /// `localhost`, `127.0.0.1` and `::1` signed by it (`server.pem`, and `server.key`
    /// with mode 0600) on first use, and reuses them afterwards (new ones replace them
    /// 30 days before they expire, about two years on). Clients must trust `dir/ca.pem`;
    /// a `warn` line says so at start, and that this is not for production. See
    /// [`DevelopmentCertificate`](crate::DevelopmentCertificate).
    ///
    /// Defaults to none. Instead of [`tls_pem_files`](Self::tls_pem_files): the later
    /// call of the two wins. A `server.pem` in `dir` that is not a development
    /// certificate is never replaced: `build` refuses it instead.
    pub fn development_certificate(mut self, dir: impl Into<PathBuf>) -> Self {
        let make = crate::tls::make_development_certificate;
        self.tls.default = Some(DefaultIdentity::Development { dir: dir.into(), make });
        self
    }

    /// Another TLS identity, served to clients that ask for `server_name` in SNI
    /// (case-insensitive). A name `*.example.org` covers every name one label below
    /// `example.org` that has no entry of its own. Call once per name.
    ///
    /// Defaults to none: every client gets the [`tls_pem_files`](Self::tls_pem_files)
    /// certificate. The files are checked and watched like those, and a warning is
    /// logged when the certificate does not cover `server_name`.
    pub fn sni_pem_files(
        mut self,
        server_name: impl Into<String>,
        cert_chain: impl Into<PathBuf>,
        private_key: impl Into<PathBuf>,
    ) -> Self {
        let pair = PemPair { cert: cert_chain.into(), key: private_key.into() };
        self.tls.by_name.push((server_name.into(), pair));
        self
    }

    /// The host name clients use to reach this server (as in `wss://HOST/`). When set,
    /// loading the certificate logs a warning if it does not cover this name: the most
    /// common reason browsers refuse a certificate that is otherwise fine.
    ///
    /// Defaults to none: no host name check.
    pub fn public_host_name(mut self, host: impl Into<String>) -> Self {
        self.tls.public_host = Some(host.into());
        self
    }

    /// A certificate that expires sooner than this is loaded with a warning in the log,
    /// at start and at every reload.
    ///
    /// Defaults to 14 days.
    pub fn cert_expiry_warning(mut self, before: Duration) -> Self {
        self.tls.expiry_warning = before;
        self
    }

    /// How often the certificate and key files are checked for changes. When their
    /// content changed (rewritten, renamed over, or a symlink switched, as ACME clients
    /// do), the new pair is loaded, checked like at start, and put in service for new
    /// handshakes; open connections are not touched. A pair that fails the checks is
    /// retried for a few seconds (the key and certificate may be written a moment apart),
    /// then refused with an `error` log while the old one stays in service.
    /// [`Handle::reload_tls`](crate::Handle::reload_tls) reloads on demand. `None` disables
    /// the periodic check.
    ///
    /// Defaults to 30 seconds (two small file reads each time).
    pub fn tls_reload_interval(mut self, interval: Option<Duration>) -> Self {
        self.tls.reload_interval = interval;
        self
    }

    /// Accepts TLS 1.3 only, refusing TLS 1.2 clients.
    ///
    /// Defaults to `false`: TLS 1.3 and TLS 1.2 (with forward-secret AEAD cipher suites
    /// only), so that older clients and devices can connect.
    pub fn tls13_only(mut self, only: bool) -> Self {
        self.tls.tls13_only = only;
        self
    }

    /// Asks clients for a certificate signed by a CA in `ca_file` (PEM, one or more
    /// certificates): mutual TLS. The verified certificate reaches the application as
    /// [`ConnectionInfo::client_certificate`](crate::ConnectionInfo).
    ///
    /// Defaults to none: clients are not asked for a certificate.
    pub fn client_auth(mut self, ca_file: impl Into<PathBuf>, mode: ClientAuth) -> Self {
        self.tls.client_auth = Some((ca_file.into(), mode));
        self
    }

    /// Serves plain `ws://` without TLS, for a server that sits behind a reverse proxy
    /// (nginx, Caddy, HAProxy, ...) that terminates TLS. Anything between the proxy and
    /// this server can read and change the traffic, so bind to a local or private
    /// address; the server logs a warning at start. Excludes every other TLS setting.
    ///
    /// Defaults to `false`: TLS is required.
    pub fn plain_ws_behind_proxy(mut self, plain: bool) -> Self {
        self.tls.plain = plain;
        self
    }
}
