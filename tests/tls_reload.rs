//! Certificate renewal without downtime: the files change the way ACME clients change
//! them, new clients get the new certificate, open connections carry on.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::pki::{Ca, Leaf, DAY};
use common::{client_tls, connect_with, eventually, read_data, served_fingerprint, TempDir};
use tinywss::{Config, ConfigBuilder, Error, Server};

/// A server whose certificate files can be replaced, and a CA clients trust.
struct Setup {
    server: Server,
    ca: Ca,
    ca_file: PathBuf,
    dir: TempDir,
    first: Leaf,
}

fn setup(cert: &str, key: &str, configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Setup {
    common::init_logger();
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let ca_file = ca.write(&dir.0.join("ca.pem"));
    let first = ca.leaf(&["localhost"]);
    std::fs::write(dir.0.join(cert), &first.pem).unwrap();
    std::fs::write(dir.0.join(key), &first.key_pem).unwrap();
    let builder = Config::builder().bind("127.0.0.1:0").tls_pem_files(dir.0.join(cert), dir.0.join(key));
    let server = Server::bind(configure(builder).build().unwrap()).unwrap();
    Setup { server, ca, ca_file, dir, first }
}

impl Setup {
    fn connect(&self) -> common::Client {
        connect_with(self.server.local_addr(), client_tls(&self.ca_file), "localhost", "/").unwrap()
    }

    fn fingerprint_now(&self) -> String {
        served_fingerprint(&self.connect())
    }
}

fn fast(b: ConfigBuilder) -> ConfigBuilder {
    b.tls_reload_interval(Some(Duration::from_millis(20)))
}

/// Writes `contents` to a temporary file next to `path` and renames it over `path`.
fn rename_over(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn echo_once(client: &mut common::Client, text: &str) {
    client.send(tungstenite::Message::text(text)).unwrap();
    assert_eq!(read_data(client), tungstenite::Message::text(text));
}

#[test]
fn renewal_by_rename_keeps_open_connections_and_serves_the_new_certificate() {
    let setup = setup("server.pem", "server.key", fast);
    let _echo = common::echo_events(&setup.server);
    let mut before = setup.connect();
    echo_once(&mut before, "before");
    assert_eq!(served_fingerprint(&before), setup.first.fingerprint());

    let renewed = setup.ca.leaf(&["localhost"]);
    rename_over(&setup.dir.0.join("server.key"), &renewed.key_pem);
    rename_over(&setup.dir.0.join("server.pem"), &renewed.pem);
    eventually("new clients get the renewed certificate", || setup.fingerprint_now() == renewed.fingerprint());

    echo_once(&mut before, "after the swap");
    assert_eq!(served_fingerprint(&before), setup.first.fingerprint(), "its session is untouched");
    let handle = setup.server.handle();
    eventually("only the first client stays, once the probes have gone", || handle.stats().connections == 1);
    echo_once(&mut before, "still there");
}

#[test]
fn certbot_style_symlink_switch() {
    let setup = setup("live-cert.pem", "live-key.pem", fast);
    let (live_cert, live_key) = (setup.dir.0.join("live-cert.pem"), setup.dir.0.join("live-key.pem"));
    // live/ links to archive/ files, as certbot lays them out.
    let archive = |name: &str, contents: &str| {
        let path = setup.dir.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let link = |target: &Path, link: &Path| {
        let tmp = link.with_extension("new");
        std::os::unix::fs::symlink(target, &tmp).unwrap();
        std::fs::rename(&tmp, link).unwrap();
    };
    link(&archive("cert1.pem", &setup.first.pem), &live_cert);
    link(&archive("privkey1.pem", &setup.first.key_pem), &live_key);
    setup.server.handle().reload_tls().unwrap();
    assert_eq!(setup.fingerprint_now(), setup.first.fingerprint());

    let renewed = setup.ca.leaf(&["localhost"]);
    let (cert2, key2) = (archive("cert2.pem", &renewed.pem), archive("privkey2.pem", &renewed.key_pem));
    link(&cert2, &live_cert);
    link(&key2, &live_key);
    eventually("the switched symlinks are followed", || setup.fingerprint_now() == renewed.fingerprint());
}

#[test]
fn key_written_after_the_certificate() {
    let setup = setup("server.pem", "server.key", fast);
    let renewed = setup.ca.leaf(&["localhost"]);
    std::fs::write(setup.dir.0.join("server.pem"), &renewed.pem).unwrap();
    // Until the key arrives the new certificate cannot be served: the old pair answers.
    assert_eq!(setup.fingerprint_now(), setup.first.fingerprint());
    std::fs::write(setup.dir.0.join("server.key"), &renewed.key_pem).unwrap();
    eventually("the pair is swapped once consistent", || setup.fingerprint_now() == renewed.fingerprint());
}

#[test]
fn broken_replacement_keeps_the_old_certificate_in_service() {
    let setup = setup("server.pem", "server.key", |b| b.tls_reload_interval(None));
    let handle = setup.server.handle();
    let (cert, key) = (setup.dir.0.join("server.pem"), setup.dir.0.join("server.key"));

    let now = SystemTime::now();
    let expired = setup.ca.leaf_valid(&["localhost"], now - 90 * DAY, now - DAY);
    std::fs::write(&cert, &expired.pem).unwrap();
    std::fs::write(&key, &expired.key_pem).unwrap();
    let err = handle.reload_tls().unwrap_err();
    assert!(matches!(&err, Error::TlsFile { path, .. } if path == &cert), "{err:?}");
    assert!(err.to_string().contains("expired on"), "{err}");
    assert_eq!(setup.fingerprint_now(), setup.first.fingerprint());

    let other = setup.ca.leaf(&["localhost"]);
    std::fs::write(&cert, &setup.first.pem).unwrap();
    std::fs::write(&key, &other.key_pem).unwrap();
    assert!(matches!(handle.reload_tls(), Err(Error::KeyMismatch { .. })));
    assert_eq!(setup.fingerprint_now(), setup.first.fingerprint());

    std::fs::write(&cert, &other.pem).unwrap();
    handle.reload_tls().unwrap();
    assert_eq!(setup.fingerprint_now(), other.fingerprint(), "a good pair is taken on demand");
}

/// Shuts the server down within the test's patience, also when the test fails: a server
/// stuck in a file read then fails the test instead of hanging it in `Server`'s drop
/// (which finds nothing left to do once one shutdown has begun).
struct BoundedShutdown(tinywss::Handle);

impl BoundedShutdown {
    fn shutdown(&self) -> Option<Result<(), Error>> {
        let handle = self.0.clone();
        common::within_patience(move || handle.shutdown())
    }
}

impl Drop for BoundedShutdown {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[test]
fn a_fifo_in_place_of_the_certificate_blocks_neither_new_clients_nor_shutdown() {
    common::init_logger();
    let (dir, ca) = (TempDir::new(), Ca::new("Test CA"));
    let ca_file = ca.write(&dir.0.join("ca.pem"));
    let (first, other) = (ca.leaf(&["localhost"]), ca.leaf(&["other.test"]));
    let (cert, key) = first.write(&dir.0, "server", &[]);
    let (other_cert, other_key) = other.write(&dir.0, "other", &[]);
    let builder = Config::builder().bind("127.0.0.1:0").tls_pem_files(&cert, &key).sni_pem_files(
        "other.test",
        &other_cert,
        &other_key,
    );
    let server = Server::bind(fast(builder).build().unwrap()).unwrap();
    let _echo = common::echo_events(&server);
    let stopper = BoundedShutdown(server.handle());
    let addr = server.local_addr();
    // A fresh client config each time: a resumed session would show the old certificate.
    let connect = |name: &str| connect_with(addr, client_tls(&ca_file), name, "/");
    let fingerprint = |name: &str| connect(name).ok().map(|c| served_fingerprint(&c));

    // A named pipe that nobody writes to: a plain open() for reading waits for a writer.
    let fifo = dir.0.join("server.fifo");
    common::mkfifo(&fifo);
    std::fs::rename(&fifo, &cert).unwrap();
    // Renewed after the pipe appeared: once it is served, the periodic check has looked
    // at the pipe and moved on.
    let renewed = ca.leaf(&["other.test"]);
    rename_over(&other_key, &renewed.key_pem);
    rename_over(&other_cert, &renewed.pem);
    eventually("the other name's renewal is served", || fingerprint("other.test") == Some(renewed.fingerprint()));

    let mut client = connect("localhost").expect("a new client is accepted");
    echo_once(&mut client, "still accepting");
    assert_eq!(served_fingerprint(&client), first.fingerprint(), "the certificate in service stays");
    drop(client);

    let handle = server.handle();
    let err = common::within_patience(move || handle.reload_tls()).expect("reload_tls() returns").unwrap_err();
    assert!(matches!(&err, Error::TlsFile { path, .. } if path == &cert), "{err:?}");
    assert!(err.to_string().contains("not a regular file"), "{err}");

    assert!(matches!(stopper.shutdown(), Some(Ok(()))), "Handle::shutdown returns in time");
}
