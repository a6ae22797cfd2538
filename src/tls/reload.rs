//! Certificate renewal without downtime.
//!
//! ACME clients renew certificates by rewriting files: certbot switches the symlinks in
//! `live/` to new files in `archive/`, others rename a new file over the old one or
//! write the certificate and the key one after the other. So the reloader compares the
//! files' *content* (a SHA-256 of both, read through any symlink) with the pair in
//! service. It reads them only when their metadata (inode, size, times) changed since the
//! last look: files left as they are cost two `stat` calls per check, however large or
//! refused they are. And it reads them the way they are read at start, never blocking on
//! a FIFO and never more than a PEM file's worth ([`load::read_file`]), since the check
//! shares the acceptor's thread. When the content changed, the new pair is loaded and
//! checked like at start and swapped into the [`CertStore`]: handshakes that start
//! afterwards get it, open connections keep their session. A pair that fails (a key that
//! does not match yet, an expired certificate, a half-written file) is retried every
//! second for [`GRACE`], then refused with an `error` log, and the old pair stays in
//! service until the files change again.
//!
//! While no renewal arrives, a certificate in service that expires within the warning
//! window is mentioned again once a day (`warn`, then `error` once expired), so a broken
//! ACME client shows in the logs before clients notice.
//!
//! The periodic check runs on the acceptor thread, between accepts (its `poll` timeout
//! is the next check): no thread of its own, no inotify.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;

use super::info::utc;
use super::load::{self, Checks, Loaded, PemPair};
use super::resolver::CertStore;
use crate::Error;

/// How soon a pair that failed to load is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How long a changed pair may keep failing before it is refused.
const GRACE: Duration = Duration::from_secs(10);
/// How often a certificate in service that expires soon is mentioned again.
const REMINDER: Duration = Duration::from_secs(24 * 3600);
/// How long ago a file must have last changed for its metadata alone to vouch for its
/// content. File times are coarse (a kernel tick; 2 s on FAT): a second write within the
/// same step can leave them as they were, so files changed more recently than this are
/// read again at each check (the way git treats "racily clean" files).
const SETTLE: Duration = Duration::from_secs(2);

/// One certificate the server serves, and where it comes from.
#[derive(Debug)]
pub(crate) struct Identity {
    /// The SNI name it serves; `None` for the default certificate.
    pub(crate) name: Option<String>,
    pub(crate) files: PemPair,
    /// The host name clients use, to warn when the certificate does not cover it.
    pub(crate) host: Option<String>,
}

/// Watches the certificate files and swaps renewed pairs into the store.
#[derive(Debug)]
pub(crate) struct Reloader {
    provider: Arc<CryptoProvider>,
    store: Arc<CertStore>,
    checks: Checks,
    interval: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    watched: Vec<Watched>,
    /// `None` when periodic checks are off.
    next_check: Option<Instant>,
}

#[derive(Debug)]
struct Watched {
    identity: Identity,
    /// The last look at the files.
    seen: Look,
    in_service: Digest,
    /// The end of validity of the certificate in service.
    not_after: SystemTime,
    /// When its expiry was last mentioned (loading mentions it too).
    reminded: Instant,
    change: Option<Change>,
}

/// Files whose content differs from the pair in service and did not load (yet).
#[derive(Debug)]
struct Change {
    digest: Digest,
    since: Instant,
    /// Refused after the grace period; not tried again until the content changes.
    refused: bool,
}

/// SHA-256 of the certificate file then the key file; `None` when one cannot be read.
type Digest = Option<[u8; 32]>;

/// What a look at an identity's files found: their metadata and the digest of their
/// content. The next check compares the metadata first and reads nothing when it is the
/// same, so unchanged files (and a refused pair left as it is) are not read again.
#[derive(Clone, Debug)]
struct Look {
    /// The certificate file's, then the key file's.
    stamps: [Option<Stamp>; 2],
    digest: Digest,
    /// Whether the files last changed long enough before the look (see [`SETTLE`]) for
    /// the same metadata to mean the same content.
    settled: bool,
}

/// A file's identity and last change, as `stat(2)` tells them through any symlink: a
/// rename over it or a symlink switch changes the inode, a write the size or times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    /// mtime, seconds and nanoseconds.
    modified: (i64, i64),
    /// ctime, which no one can set back (`cp -p` and `touch -d` set mtime only).
    changed: (i64, i64),
}

impl Reloader {
    /// Loads every identity (an error stops the server from starting) and puts it in service.
    pub(crate) fn start(
        provider: Arc<CryptoProvider>,
        store: Arc<CertStore>,
        identities: Vec<Identity>,
        checks: Checks,
        interval: Option<Duration>,
    ) -> Result<Reloader, Error> {
        let reloader = Reloader { provider, store, checks, interval, state: Mutex::new(State::default()) };
        let mut watched = Vec::with_capacity(identities.len());
        for identity in identities {
            // Look first: a change racing with this load is then seen by the next check.
            let seen = Look::take(&identity.files, None, SystemTime::now());
            let loaded = reloader.load(&identity)?;
            let not_after = reloader.put_in_service(&identity, loaded, "serving");
            let in_service = seen.digest;
            watched.push(Watched { identity, seen, in_service, not_after, reminded: Instant::now(), change: None });
        }
        let next_check = interval.map(|i| Instant::now() + i);
        *reloader.lock() = State { watched, next_check };
        Ok(reloader)
    }

    /// When the next periodic check is due (the acceptor's `poll` timeout).
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.lock().next_check
    }

    /// Runs the periodic check if it is due at `now`.
    pub(crate) fn tick(&self, now: Instant) {
        self.tick_at(now, SystemTime::now());
    }

    /// [`tick`](Self::tick) with the wall-clock time given (tests move it forward).
    fn tick_at(&self, now: Instant, wall: SystemTime) {
        let mut state = self.lock();
        let (Some(due), Some(interval)) = (state.next_check, self.interval) else { return };
        if now < due {
            return;
        }
        let mut retry = false;
        for watched in &mut state.watched {
            retry |= self.check(watched, now, wall);
            if let Some((level, reminder)) = self.expiry_reminder(watched, now, wall) {
                log::log!(level, "{reminder}");
            }
        }
        state.next_check = Some(now + if retry { interval.min(RETRY) } else { interval });
    }

    /// Reloads every identity now, whether or not its files changed. All or nothing:
    /// when one pair fails its checks, none is swapped and the error is returned (and logged).
    pub(crate) fn reload_now(&self) -> Result<(), Error> {
        let mut state = self.lock();
        let mut fresh = Vec::with_capacity(state.watched.len());
        for watched in &state.watched {
            let seen = Look::take(&watched.identity.files, None, SystemTime::now());
            match self.load(&watched.identity) {
                Ok(loaded) => fresh.push((seen, loaded)),
                Err(e) => {
                    log::error!("TLS reload refused: {e}; the certificate in service stays");
                    return Err(e);
                }
            }
        }
        for (watched, (seen, loaded)) in state.watched.iter_mut().zip(fresh) {
            watched.not_after = self.put_in_service(&watched.identity, loaded, "reloaded");
            watched.reminded = Instant::now();
            watched.in_service = seen.digest;
            watched.seen = seen;
            watched.change = None;
        }
        Ok(())
    }

    /// Looks at one identity's files; returns whether to look again soon.
    fn check(&self, watched: &mut Watched, now: Instant, wall: SystemTime) -> bool {
        watched.seen = Look::take(&watched.identity.files, Some(&watched.seen), wall);
        let digest = watched.seen.digest;
        if digest == watched.in_service {
            if watched.change.take().is_some() {
                log::info!("{}: back to the certificate in service", watched.identity.files.cert.display());
            }
            return false;
        }
        match &watched.change {
            Some(change) if change.digest == digest && change.refused => return false,
            Some(change) if change.digest == digest => {}
            _ => watched.change = Some(Change { digest, since: now, refused: false }),
        }
        match self.load(&watched.identity) {
            Ok(loaded) => {
                watched.not_after = self.put_in_service(&watched.identity, loaded, "renewed");
                watched.reminded = now;
                watched.in_service = digest;
                watched.change = None;
                false
            }
            Err(e) => {
                let Some(change) = watched.change.as_mut() else { return false };
                if now.saturating_duration_since(change.since) < GRACE {
                    log::debug!("TLS files changed but do not load yet ({e}); retrying (they may be half written)");
                    return true;
                }
                change.refused = true;
                log::error!("TLS reload refused: {e}; the certificate in service stays until the files change again");
                false
            }
        }
    }

    fn load(&self, identity: &Identity) -> Result<Loaded, Error> {
        let files = &identity.files;
        let loaded = load::load_pair(
            &self.provider,
            &files.cert,
            &files.key,
            identity.host.as_deref(),
            &self.checks,
            SystemTime::now(),
        )?;
        for warning in &loaded.warnings {
            log::warn!("{warning}");
        }
        Ok(loaded)
    }

    /// A reminder that the certificate in service expires soon (or has expired), at most
    /// once per [`REMINDER`].
    fn expiry_reminder(&self, watched: &mut Watched, now: Instant, wall: SystemTime) -> Option<(log::Level, String)> {
        if now.saturating_duration_since(watched.reminded) < REMINDER {
            return None;
        }
        let left = watched.not_after.duration_since(wall);
        if left.as_ref().is_ok_and(|left| *left >= self.checks.expiry_warning) {
            return None;
        }
        watched.reminded = now;
        let cert = watched.identity.files.cert.display();
        let until = utc(watched.not_after);
        Some(match left {
            Ok(left) => (
                log::Level::Warn,
                format!(
                    "{cert}: the certificate in service expires on {until} (in {} days) and no renewed files \
                     have appeared; check the ACME client (e.g. `certbot renew --dry-run`)",
                    left.as_secs() / 86_400
                ),
            ),
            Err(_) => (
                log::Level::Error,
                format!("{cert}: the certificate in service EXPIRED on {until}: clients refuse it; renew it now"),
            ),
        })
    }

    /// Swaps a loaded pair into the store; returns the end of its validity.
    fn put_in_service(&self, identity: &Identity, loaded: Loaded, verb: &str) -> SystemTime {
        self.store.set(identity.name.as_deref(), loaded.key);
        let leaf = &loaded.leaf;
        log::info!(
            "{verb} {} for {}: {}, valid until {}, SHA-256 {}",
            identity.files.cert.display(),
            identity.name.as_deref().unwrap_or("clients without another SNI match"),
            leaf.short_name(),
            utc(leaf.not_after),
            leaf.sha256_fingerprint
        );
        leaf.not_after
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Look {
    /// Looks at the files: compares their metadata with `last` and reads them (through
    /// [`load::read_file`], which never blocks) only when it differs or was too fresh to
    /// be trusted. `wall` is the time before the look.
    fn take(files: &PemPair, last: Option<&Look>, wall: SystemTime) -> Look {
        let stamps = [Stamp::of(&files.cert), Stamp::of(&files.key)];
        if let Some(last) = last.filter(|last| last.settled && last.stamps == stamps) {
            return last.clone();
        }
        let settled = stamps.iter().flatten().all(|stamp| stamp.settled(wall));
        Look { stamps, digest: digest(files), settled }
    }
}

impl Stamp {
    /// The metadata of `path` through any symlink; `None` when there is none to get.
    fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Stamp {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// Whether the file last changed at least [`SETTLE`] before `wall`.
    fn settled(&self, wall: SystemTime) -> bool {
        let (Ok(secs), Ok(nanos)) = (u64::try_from(self.changed.0), u32::try_from(self.changed.1)) else {
            return true; // before 1970: long settled
        };
        let changed = UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
        changed.and_then(|changed| changed.checked_add(SETTLE)).is_some_and(|settled| settled <= wall)
    }
}

fn digest(files: &PemPair) -> Digest {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for (path, what) in [(&files.cert, "certificate"), (&files.key, "private key")] {
        let bytes = load::read_file(path, what).ok()?;
        context.update(&(bytes.len() as u64).to_le_bytes());
        context.update(&bytes);
    }
    context.finish().as_ref().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::load::tests::{mkfifo, promptly};
    use std::path::{Path, PathBuf};

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("tinywss-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// A self-signed certificate and its key, as PEM.
    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn served(store: &CertStore) -> Vec<u8> {
        store.lookup(None).unwrap().cert[0].to_vec()
    }

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    /// Writes `pair` as cert.pem and key.pem in `dir` and starts watching them.
    fn start(dir: &Path, pair: &(String, String), interval: Duration) -> (Reloader, Arc<CertStore>, PemPair) {
        let files = PemPair { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        std::fs::write(&files.cert, &pair.0).unwrap();
        std::fs::write(&files.key, &pair.1).unwrap();
        let store = Arc::new(CertStore::default());
        let identity = Identity { name: None, files: files.clone(), host: None };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let checks = Checks { expiry_warning: Duration::from_secs(14 * 24 * 3600) };
        let reloader = Reloader::start(provider, Arc::clone(&store), vec![identity], checks, Some(interval)).unwrap();
        (reloader, store, files)
    }

    #[test]
    fn waits_for_the_key_then_swaps() {
        let dir = dir("apart");
        let (old, new) = (pair(), pair());
        let interval = Duration::from_secs(30);
        let (reloader, store, files) = start(&dir.0, &old, interval);
        let t0 = Instant::now();

        reloader.tick(t0);
        assert!(reloader.next_check().is_some_and(|t| t > t0), "not due yet");
        // An ACME client writes the new certificate; the key follows a moment later.
        std::fs::write(&files.cert, &new.0).unwrap();
        let t1 = t0 + interval;
        reloader.tick(t1);
        assert_eq!(served(&store), der(&old.0), "a certificate without its key is not put in service");
        assert_eq!(reloader.next_check(), Some(t1 + RETRY), "retried soon, not in a full interval");

        std::fs::write(&files.key, &new.1).unwrap();
        reloader.tick(t1 + RETRY);
        assert_eq!(served(&store), der(&new.0));
        assert_eq!(reloader.next_check(), Some(t1 + RETRY + interval));
    }

    #[test]
    fn refuses_after_the_grace_period_and_keeps_the_old_pair() {
        let dir = dir("grace");
        let (old, other) = (pair(), pair());
        let (reloader, store, files) = start(&dir.0, &old, Duration::from_secs(30));
        std::fs::write(&files.key, &other.1).unwrap();
        let t0 = Instant::now() + Duration::from_secs(30);
        reloader.tick(t0);
        reloader.tick(t0 + GRACE);
        assert_eq!(served(&store), der(&old.0));
        let state = reloader.lock();
        let change = state.watched[0].change.as_ref().unwrap();
        assert!(change.refused, "refused once the grace period is over");
        assert_eq!(state.next_check, Some(t0 + GRACE + Duration::from_secs(30)), "back to the normal interval");
        drop(state);

        // Putting the old key back is not a change at all.
        std::fs::write(&files.key, &old.1).unwrap();
        reloader.tick(t0 + GRACE + Duration::from_secs(30));
        assert!(reloader.lock().watched[0].change.is_none());
        assert_eq!(served(&store), der(&old.0));
    }

    #[test]
    fn reminds_daily_while_expiry_nears() {
        let dir = dir("remind");
        let (reloader, _, _) = start(&dir.0, &pair(), Duration::from_secs(30));
        let mut state = reloader.lock();
        let watched = &mut state.watched[0];
        let (t0, not_after) = (watched.reminded, watched.not_after);

        let five_days_before = not_after - Duration::from_secs(5 * 24 * 3600 + 60);
        assert!(reloader.expiry_reminder(watched, t0 + REMINDER / 2, five_days_before).is_none(), "once a day");
        let (level, text) = reloader.expiry_reminder(watched, t0 + REMINDER, five_days_before).unwrap();
        assert_eq!(level, log::Level::Warn);
        assert!(text.contains("cert.pem") && text.contains("(in 5 days)"), "{text}");
        assert!(reloader.expiry_reminder(watched, t0 + REMINDER + REMINDER / 2, five_days_before).is_none());

        let (level, text) = reloader.expiry_reminder(watched, t0 + 2 * REMINDER, not_after + REMINDER).unwrap();
        assert_eq!(level, log::Level::Error);
        assert!(text.contains("EXPIRED"), "{text}");

        let far = not_after - Duration::from_secs(60 * 24 * 3600);
        assert!(reloader.expiry_reminder(watched, t0 + 4 * REMINDER, far).is_none(), "nothing to say yet");
    }

    /// Files this thread has opened to read so far.
    fn reads() -> usize {
        load::READS.with(|reads| reads.get())
    }

    /// Puts `make(temporary path)` in place of `path` in one rename, as deployments do.
    fn replace(path: &Path, make: impl FnOnce(&Path)) {
        let tmp = path.with_extension("new");
        make(&tmp);
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Replaces the certificate with `make`, then checks (bounded): the check returns, the
    /// pair in service stays, and a reload on demand fails naming the certificate file.
    fn check_promptly_then_reload(name: &str, make: impl FnOnce(&Path)) -> String {
        let dir = dir(name);
        let old = pair();
        let (reloader, store, files) = start(&dir.0, &old, Duration::from_secs(30));
        replace(&files.cert, make);
        let reloader = Arc::new(reloader);
        let due = Instant::now() + Duration::from_secs(30);
        let r = Arc::clone(&reloader);
        promptly("the periodic check", move || r.tick(due));
        let r = Arc::clone(&reloader);
        promptly("the check at the end of the grace period", move || r.tick(due + GRACE));
        assert!(reloader.lock().watched[0].change.as_ref().is_some_and(|c| c.refused));
        assert_eq!(served(&store), der(&old.0), "the pair in service stays");
        let r = Arc::clone(&reloader);
        match promptly("a reload on demand", move || r.reload_now()) {
            Err(Error::TlsFile { path, problem, kind, .. }) => {
                assert_eq!(path, files.cert, "{problem}");
                assert_eq!(kind, crate::CertProblem::NotARegularFile, "{problem}");
                problem
            }
            other => panic!("expected a TlsFile error, got {other:?}"),
        }
    }

    #[test]
    fn a_fifo_in_place_of_the_certificate_blocks_no_check() {
        let problem = check_promptly_then_reload("fifo", mkfifo);
        assert!(problem.contains("named pipe (FIFO)") && problem.contains("not a regular file"), "{problem}");
    }

    #[test]
    fn a_link_to_dev_zero_in_place_of_the_certificate_is_refused_promptly() {
        let problem = check_promptly_then_reload("zero", |tmp| std::os::unix::fs::symlink("/dev/zero", tmp).unwrap());
        assert!(problem.contains("character device") && problem.contains("not a regular file"), "{problem}");
    }

    #[test]
    fn an_oversized_certificate_is_refused() {
        let problem = check_promptly_then_reload("large", |tmp| std::fs::write(tmp, vec![b'A'; 2 << 20]).unwrap());
        assert!(problem.contains("larger than"), "{problem}");
    }

    #[test]
    fn files_that_did_not_change_are_not_read_at_each_check() {
        let dir = dir("still");
        let interval = Duration::from_secs(30);
        let (reloader, _, _) = start(&dir.0, &pair(), interval);
        // Long after the files were written, their metadata can be trusted.
        let (t0, wall) = (Instant::now() + interval, SystemTime::now() + Duration::from_secs(60));
        reloader.tick_at(t0, wall);
        let before = reads();
        for i in 1..4 {
            reloader.tick_at(t0 + i * interval, wall + i * interval);
        }
        assert_eq!(reads(), before, "unchanged files are not read again");
    }

    #[test]
    fn files_changed_within_the_last_seconds_are_read_again() {
        // Timestamps are coarse: a second write in the same tick could leave the metadata
        // as it was, so fresh metadata is no proof that the content is what was read.
        let dir = dir("fresh");
        let (interval, pair) = (Duration::from_secs(30), pair());
        // Checks that see the clock as it was before the files were written.
        let wall = SystemTime::now();
        let (reloader, _, _) = start(&dir.0, &pair, interval);
        let t0 = Instant::now() + interval;
        reloader.tick_at(t0, wall);
        let before = reads();
        reloader.tick_at(t0 + interval, wall);
        assert_eq!(reads(), before + 2, "both files are read again");
    }

    #[test]
    fn a_refused_change_is_not_read_again_until_the_files_change() {
        let dir = dir("refused");
        let (old, other) = (pair(), pair());
        let interval = Duration::from_secs(30);
        let (reloader, store, files) = start(&dir.0, &old, interval);
        std::fs::write(&files.key, &other.1).unwrap();
        let (t0, wall) = (Instant::now() + interval, SystemTime::now() + Duration::from_secs(60));
        reloader.tick_at(t0, wall);
        reloader.tick_at(t0 + GRACE, wall + GRACE);
        assert!(reloader.lock().watched[0].change.as_ref().is_some_and(|c| c.refused));

        let before = reads();
        for i in 1..4 {
            reloader.tick_at(t0 + GRACE + i * interval, wall + GRACE + i * interval);
        }
        assert_eq!(reads(), before, "a refused pair whose files did not change is not read again");

        // The same content written again: the metadata changed, so both files are read
        // once, and the content is still the refused one: no new attempt to load it.
        std::fs::write(&files.key, &other.1).unwrap();
        reloader.tick_at(t0 + GRACE + 4 * interval, wall + GRACE + 4 * interval);
        assert_eq!(reads(), before + 2, "read (the metadata changed), not loaded (the content did not)");
        assert!(reloader.lock().watched[0].change.as_ref().is_some_and(|c| c.refused));
        assert_eq!(served(&store), der(&old.0));
    }

    #[test]
    fn reload_now_is_all_or_nothing() {
        let dir = dir("now");
        let (old, new) = (pair(), pair());
        let (reloader, store, files) = start(&dir.0, &old, Duration::from_secs(30));
        std::fs::write(&files.cert, &new.0).unwrap();
        assert!(matches!(reloader.reload_now(), Err(Error::KeyMismatch { .. })));
        assert_eq!(served(&store), der(&old.0));
        std::fs::write(&files.key, &new.1).unwrap();
        reloader.reload_now().unwrap();
        assert_eq!(served(&store), der(&new.0));
    }
}
