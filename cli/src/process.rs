//! A child process behind WebSocket messages: its output cut into messages on a reader
//! thread, its input written on a writer thread, each through a small bounded channel,
//! so a process that writes faster than clients read, or does not read what they send,
//! is held back by its pipes instead of filling memory. And its end: SIGTERM, SIGKILL
//! after a grace period, and always a `wait`, so no zombie stays behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tinywss::crossbeam_channel::{bounded, Receiver, Sender};
use tinywss::Message;

/// Messages waiting between the process and the connection, each way. Small: the pipe
/// (64 KiB on Linux) is the real buffer, and a full channel stops the reader thread,
/// which leaves the pipe full, which stops the process in `write`.
const CHANNEL: usize = 16;

/// How much a binary chunk (or a line without its end) may hold.
const CHUNK: usize = 64 << 10;

/// How output is cut into messages, and input written.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    /// Chunks as binary messages; else lines as text messages.
    pub binary: bool,
    /// The longest line: longer ones are cut (the client could not take more anyway).
    pub max_line: usize,
}

/// Starts `command` with piped stdin and stdout (stderr goes to ours, so it lands in the
/// server's log), and the threads that move its bytes. `on_output` runs on the reader
/// thread after each message it queues and once at the end of the output.
pub fn spawn(
    mut command: Command,
    framing: Framing,
    on_output: impl Fn() + Send + 'static,
) -> std::io::Result<(Child, Sender<Vec<u8>>, Receiver<Message>)> {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let (input, to_stdin) = bounded(CHANNEL);
    let (from_stdout, output) = bounded(CHANNEL);
    if let Some(stdin) = stdin {
        thread::Builder::new().name("tinywss-stdin".into()).spawn(move || write_input(stdin, &to_stdin))?;
    }
    if let Some(stdout) = stdout {
        thread::Builder::new().name("tinywss-stdout".into()).spawn(move || {
            read_output(stdout, framing, &from_stdout, &on_output);
            drop(from_stdout);
            on_output();
        })?;
    }
    Ok((child, input, output))
}

/// Writes each input to the process until it closes its stdin (or exits): `EPIPE` ends
/// this thread, which disconnects the channel.
fn write_input(mut stdin: ChildStdin, inputs: &Receiver<Vec<u8>>) {
    for input in inputs {
        if stdin.write_all(&input).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

fn read_output(stdout: ChildStdout, framing: Framing, messages: &Sender<Message>, on_output: &impl Fn()) {
    let mut reader = BufReader::with_capacity(CHUNK.min(framing.max_line.max(1)), stdout);
    loop {
        let message = if framing.binary { read_chunk(&mut reader) } else { read_line(&mut reader, framing.max_line) };
        let Some(message) = message else { return };
        if messages.send(message).is_err() {
            return;
        }
        on_output();
    }
}

/// What one `read` returns, as one binary message.
fn read_chunk(reader: &mut impl Read) -> Option<Message> {
    let mut chunk = vec![0; CHUNK];
    let n = reader.read(&mut chunk).ok().filter(|&n| n > 0)?;
    chunk.truncate(n);
    Some(Message::Binary(chunk))
}

/// The next line without its `\n` (and `\r`), as text (invalid UTF-8 replaced), at most
/// `max` bytes: a longer line is cut into messages of `max` bytes.
fn read_line(reader: &mut impl BufRead, max: usize) -> Option<Message> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().ok()?;
        if buf.is_empty() {
            // End of output: a last line without its newline still counts.
            return (!line.is_empty()).then(|| text(line));
        }
        let room = max.saturating_sub(line.len()).max(1);
        // One byte past the room: a line of exactly `max` bytes keeps its newline.
        if let Some(end) = buf[..buf.len().min(room + 1)].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..end]);
            reader.consume(end + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(text(line));
        }
        let n = buf.len().min(room);
        line.extend_from_slice(&buf[..n]);
        reader.consume(n);
        if line.len() >= max {
            return Some(text(line));
        }
    }
}

fn text(line: Vec<u8>) -> Message {
    match String::from_utf8(line) {
        Ok(text) => Message::Text(text),
        Err(e) => Message::Text(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// A client message as the process reads it: text with a newline, binary as it is.
pub fn input(message: &Message, prefix: &str) -> Vec<u8> {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend_from_slice(message.as_bytes());
    if let Message::Text(_) = message {
        bytes.push(b'\n');
    }
    bytes
}

/// A child process that is stopped and reaped when this is dropped, even on a panic in
/// the code that holds it: no process outlives its connection, and no zombie stays.
pub struct Reaper {
    pub child: Child,
    grace: Duration,
    status: Option<Option<ExitStatus>>,
}

impl Reaper {
    pub fn new(child: Child, grace: Duration) -> Reaper {
        Reaper { child, grace, status: None }
    }

    /// Stops the process (see [`stop`]) once; how it ended.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        *self.status.get_or_insert_with(|| stop(&mut self.child, self.grace))
    }

    /// Lets the process end by itself for up to the grace period, then stops it. For a
    /// process that closed its output: it is most likely exiting, and a SIGTERM sent
    /// now would replace its own exit status with the signal.
    pub fn finish(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + self.grace;
        while self.status.is_none() && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => self.status = Some(Some(status)),
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        self.stop()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ends the process: nothing if it has exited, else SIGTERM, then SIGKILL once `grace`
/// has passed; then reaps it. Returns how it ended.
pub fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal(child, Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // std has no wait with a timeout; a process that takes its time to stop costs
        // 100 checks a second, for the grace period at most.
        thread::sleep(Duration::from_millis(10));
    }
    log::info!("process {} still running {grace:?} after SIGTERM: SIGKILL", child.id());
    signal(child, Signal::KILL);
    child.wait().ok()
}

fn signal(child: &Child, signal: Signal) {
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited meanwhile: then `wait` reaps it just the same.
        let _ = kill_process(pid, signal);
    }
}

/// `exit 0`, `exit 3`, `killed by signal 15`.
pub fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => status.to_string(),
        },
        None => "exit status unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Message> {
        let mut reader = BufReader::with_capacity(4, input);
        std::iter::from_fn(|| read_line(&mut reader, max)).collect()
    }

    #[test]
    fn lines_lose_their_end_and_long_ones_are_cut() {
        let text = |s: &str| Message::Text(s.into());
        assert_eq!(lines(b"one\r\ntwo\n\nlast", 100), [text("one"), text("two"), text(""), text("last")]);
        assert_eq!(lines(b"abcdefgh\nij\nklm\n", 3), [text("abc"), text("def"), text("gh"), text("ij"), text("klm")]);
        assert_eq!(lines(b"\xff\n", 10), [text("\u{fffd}")]);
    }
}
