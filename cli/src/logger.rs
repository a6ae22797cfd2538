//! The program's logger: `RUST_LOG` read as env_logger reads it, lines on stderr as
//! env_logger writes them (`[2026-11-29T21:15:44Z INFO  tinywss::server] message`).
//!
//! Written here rather than taken from env_logger because env_logger, its filter parser
//! and jiff (its timestamps) made the program 20,456 B bigger than this does.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::civil_date::civil_from_days;

/// Installs the logger for `spec`, a `RUST_LOG` value.
pub fn init(spec: &str) {
    let filter = Filter::parse(spec);
    log::set_max_level(filter.max_level());
    // Once, at start-up: leaking it is what gives the `'static` logger `log` wants.
    let _ = log::set_logger(Box::leak(Box::new(filter)));
}

/// What `RUST_LOG` lets through.
#[derive(Debug, PartialEq)]
struct Filter {
    /// Target prefixes (`None`: every target) and the most verbose level each lets
    /// through, shortest prefix first: the last one that matches a target decides.
    directives: Vec<(Option<String>, LevelFilter)>,
    /// `RUST_LOG=debug/text`: only messages that contain `text`.
    contains: Option<String>,
}

impl Filter {
    /// Parses `level`, `target` (every level) and `target=level` directives, separated by
    /// commas, then an optional `/text`. Malformed directives are skipped with a warning,
    /// as env_logger does; without any, only errors are logged.
    fn parse(spec: &str) -> Filter {
        let mut filter = Filter { directives: Vec::new(), contains: None };
        let (directives, contains) = match spec.split_once('/') {
            Some((_, contains)) if contains.contains('/') => {
                eprintln!("warning: invalid logging spec '{spec}' (too many '/'s), ignoring it");
                ("", None)
            }
            Some((directives, contains)) => (directives, Some(contains.to_owned())),
            None => (spec, None),
        };
        for text in directives.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match parse_directive(text) {
                Some(directive) => filter.directives.push(directive),
                None => eprintln!("warning: invalid logging spec '{text}', ignoring it"),
            }
        }
        if filter.directives.is_empty() {
            filter.directives.push((None, LevelFilter::Error));
        }
        // Stable: of two directives for the same target, the later one wins.
        filter.directives.sort_by_key(|(target, _)| target.as_ref().map_or(0, String::len));
        filter.contains = contains;
        filter
    }

    fn max_level(&self) -> LevelFilter {
        self.directives.iter().map(|&(_, level)| level).max().unwrap_or(LevelFilter::Off)
    }

    /// Whether a line at `level` from `target` is logged: the longest matching prefix decides.
    fn allows(&self, level: Level, target: &str) -> bool {
        let matching = self
            .directives
            .iter()
            .rev()
            .find(|(prefix, _)| prefix.as_ref().is_none_or(|p| target.starts_with(p.as_str())));
        matching.is_some_and(|&(_, max)| level <= max)
    }
}

/// One directive: `level`, `target` or `target=level`; `None` when malformed.
fn parse_directive(text: &str) -> Option<(Option<String>, LevelFilter)> {
    let mut parts = text.split('=');
    match (parts.next(), parts.next().map(str::trim), parts.next()) {
        (Some(only), None, None) => Some(match only.parse() {
            Ok(level) => (None, level),
            Err(_) => (Some(only.to_owned()), LevelFilter::Trace),
        }),
        (Some(target), Some(""), None) => Some((Some(target.to_owned()), LevelFilter::Trace)),
        (Some(target), Some(level), None) => level.parse().ok().map(|level| (Some(target.to_owned()), level)),
        _ => None,
    }
}

impl Log for Filter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.allows(metadata.level(), metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if self.contains.as_ref().is_some_and(|text| !message.contains(text.as_str())) {
            return;
        }
        let line = format!("[{} {:<5} {}] {message}\n", timestamp(SystemTime::now()), record.level(), record.target());
        // One write for the whole line, so that lines from different threads never mix.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC), as env_logger prints it.
fn timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_every_target() {
        let filter = Filter::parse("info");
        assert!(filter.allows(Level::Info, "tinywss::server") && filter.allows(Level::Warn, "anything"));
        assert!(!filter.allows(Level::Debug, "tinywss::server"));
        assert_eq!(filter.max_level(), LevelFilter::Info);
    }

    #[test]
    fn the_longest_matching_target_decides() {
        let filter = Filter::parse("debug, tungstenite=info,tinywss::connection=trace");
        assert!(filter.allows(Level::Trace, "tinywss::connection::session"));
        assert!(!filter.allows(Level::Trace, "tinywss::server") && filter.allows(Level::Debug, "tinywss::server"));
        assert!(!filter.allows(Level::Debug, "tungstenite::protocol") && filter.allows(Level::Info, "tungstenite"));
        assert_eq!(filter.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn a_bare_target_gets_every_level_and_others_nothing() {
        let filter = Filter::parse("tinywss");
        assert!(filter.allows(Level::Trace, "tinywss::hub") && !filter.allows(Level::Error, "rustls"));
        let filter = Filter::parse("tinywss=");
        assert!(filter.allows(Level::Trace, "tinywss::hub"));
    }

    #[test]
    fn levels_are_case_insensitive_and_off_is_one() {
        let filter = Filter::parse("WARN,tinywss=Off");
        assert!(filter.allows(Level::Warn, "rustls") && !filter.allows(Level::Info, "rustls"));
        assert!(!filter.allows(Level::Error, "tinywss::server"));
    }

    #[test]
    fn malformed_directives_are_skipped() {
        let filter = Filter::parse("tinywss=loud,a=b=c,info");
        assert_eq!(filter, Filter { directives: vec![(None, LevelFilter::Info)], contains: None });
        assert_eq!(Filter::parse(""), Filter { directives: vec![(None, LevelFilter::Error)], contains: None });
        assert_eq!(Filter::parse("info/a/b").directives, vec![(None, LevelFilter::Error)]);
    }

    #[test]
    fn text_after_a_slash_filters_messages() {
        let filter = Filter::parse("debug/handshake");
        assert_eq!(filter.contains.as_deref(), Some("handshake"));
        assert_eq!(filter.directives, vec![(None, LevelFilter::Debug)]);
    }

    #[test]
    fn timestamps_are_rfc_3339_utc() {
        let time = UNIX_EPOCH + std::time::Duration::from_secs(1_795_986_944);
        assert_eq!(timestamp(time), "2026-11-29T21:15:44Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
