//! Relaying a worker's standard error, within bounds.

use std::io::Read;
use std::time::{Duration, Instant};

/// The longest worker log line relayed; the rest of the line is dropped.
const MAX_LOG_LINE_BYTES: usize = 2048;

/// Lines a worker may log per minute; past it, lines are dropped until the minute is over
/// (with one notice). A worker runs untrusted code, and its log must not become a way to
/// fill the server's disk.
const MAX_LOG_LINES_PER_MINUTE: u32 = 600;

/// Forwards a worker's standard error to the server's, line by line, within the bounds
/// above, until the worker ends.
pub(super) fn relay_log(pid: u32, log: std::process::ChildStderr) {
    // Written as they came (already formatted by the worker's subscriber), with the pid so
    // they are told apart.
    relay_lines(pid, log, |line| eprintln!("[worker {pid}] {line}"));
}

/// [`relay_log`]'s bounds, over any reader and sink.
fn relay_lines(pid: u32, log: impl Read, mut emit: impl FnMut(&str)) {
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(log);
    let mut line = Vec::new();
    let mut window = Instant::now();
    let mut lines_in_window = 0u32;
    loop {
        line.clear();
        // Reads at most one bounded line; a longer one is cut, its rest read and dropped.
        let read = (&mut reader)
            .take(MAX_LOG_LINE_BYTES as u64)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // Only a line that filled the bound is cut; a last line without a newline is whole.
        let cut = !line.ends_with(b"\n") && line.len() >= MAX_LOG_LINE_BYTES;
        if cut {
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut reader).take(64 * 1024).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.ends_with(b"\n") => break,
                    Ok(_) => {}
                }
            }
        }
        if window.elapsed() >= Duration::from_secs(60) {
            window = Instant::now();
            lines_in_window = 0;
        }
        lines_in_window += 1;
        if lines_in_window > MAX_LOG_LINES_PER_MINUTE {
            if lines_in_window == MAX_LOG_LINES_PER_MINUTE + 1 {
                tracing::warn!(
                    pid,
                    "a worker logs too much; its lines are dropped for a minute"
                );
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = escaped(text.trim_end());
        if cut {
            emit(&format!("{text} …"));
        } else {
            emit(&text);
        }
    }
}

/// `text` with control characters (a carriage return, terminal escapes) and the formatting
/// characters that reorder text escaped: a worker's line could otherwise hide its
/// `[worker pid]` prefix and pass for one of the server's own. The worker's own log lines
/// have none (its standard error is a pipe, so it writes no colours).
fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        let mut lines = Vec::new();
        relay_lines(
            7,
            "plain line\nfake\r2026 ERROR server: forged\x1b[2K\u{202e}x\n".as_bytes(),
            |line| lines.push(line.to_owned()),
        );
        assert_eq!(lines[0], "plain line");
        assert!(
            !lines[1].contains(['\r', '\x1b', '\u{202e}']),
            "{:?}",
            lines[1]
        );
        assert!(lines[1].contains("\\u{d}"), "{:?}", lines[1]);
    }

    #[test]
    fn a_flooding_worker_log_is_cut_and_rate_limited() {
        let mut log = Vec::new();
        log.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        log.push(b'\n');
        for i in 0..5_000 {
            log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut lines = Vec::new();
        relay_lines(1, log.as_slice(), |line| lines.push(line.to_owned()));
        assert_eq!(lines.len(), MAX_LOG_LINES_PER_MINUTE as usize);
        assert!(
            lines[0].len() <= MAX_LOG_LINE_BYTES + " …".len(),
            "{}",
            lines[0].len()
        );
        assert!(lines[0].ends_with(" …"));
        // The rest of the long line was dropped, not relayed as lines of its own.
        assert_eq!(lines[1], "line 0");
    }

    #[test]
    fn ordinary_lines_pass_unchanged() {
        let mut lines = Vec::new();
        relay_lines(1, b"one\ntwo\nthree".as_slice(), |line| {
            lines.push(line.to_owned())
        });
        assert_eq!(lines, ["one", "two", "three"]);
    }
}
