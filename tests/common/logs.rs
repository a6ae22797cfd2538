//! A logger that keeps every record, so tests can assert on warnings. A test binary that
//! uses it must call [`capture`] (or [`capture_at`]) before anything else logs (the first
//! logger set wins).

use std::sync::Mutex;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let text = record.args().to_string();
            RECORDS.lock().unwrap_or_else(|p| p.into_inner()).push((record.level(), text));
        }
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once per process), keeping `info` and above.
pub fn capture() {
    capture_at(log::LevelFilter::Info);
}

/// Installs the capturing logger (once per process), keeping `level` and above.
pub fn capture_at(level: log::LevelFilter) {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Every record at `level` whose text contains `needle` (a file path keeps tests apart).
pub fn matching(level: log::Level, needle: &str) -> Vec<String> {
    let records = RECORDS.lock().unwrap_or_else(|p| p.into_inner());
    records.iter().filter(|(l, text)| *l == level && text.contains(needle)).map(|(_, text)| text.clone()).collect()
}

/// Every record, at any level, whose text contains `needle`.
pub fn containing(needle: &str) -> Vec<String> {
    let records = RECORDS.lock().unwrap_or_else(|p| p.into_inner());
    records.iter().filter(|(_, text)| text.contains(needle)).map(|(_, text)| text.clone()).collect()
}
