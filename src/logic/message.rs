// SPDX-License-Identifier: GPL-2.0

//! Parsing of `dmsetup message <dev> 0 <message>`.

use super::args::parse_u64;
use super::scan::{parse_command, Command};
use core::ffi::CStr;

/// The reply of `help`, one message per line.
pub const HELP: &str = "remap <block>\nunremap <block>\nquery <block>\nlist [<start> [<count>]]\ncount\nclear_errors\nscan start|stop|pause|resume\nhelp";

/// A parsed message. Blocks are numbered from the start of the target in `block_size`
/// units (the same numbering as the main device's blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Copy the block to a spare block and remap it.
    Remap(u64),
    /// Copy the block back to the main device and free its spare block.
    Unremap(u64),
    /// Where the block lives.
    Query(u64),
    /// Entries from `start`, at most `count` of them (all when `None`).
    List {
        /// First block to list from.
        start: u64,
        /// Most entries to list.
        count: Option<u64>,
    },
    /// Number of remapped and failing blocks.
    Count,
    /// Reset the error counters and forget blocks marked failing.
    ClearErrors,
    /// A command for the background scanner.
    Scan(Command),
    /// List the messages.
    Help,
}

/// Parses a message for a target of `blocks` blocks; the error is the reason to log.
pub fn parse_message(args: &[&[u8]], blocks: u64) -> Result<Message, &'static CStr> {
    let Some((&name, rest)) = args.split_first() else {
        return Err(c"empty message; 'help' lists the messages");
    };
    let block = |rest: &[&[u8]], usage: &'static CStr| -> Result<u64, &'static CStr> {
        let [word] = rest else {
            return Err(usage);
        };
        let b = parse_u64(word).map_err(|_| c"block number is not a decimal number")?;
        if b >= blocks {
            return Err(c"block number is beyond the end of the target");
        }
        Ok(b)
    };
    let none = |rest: &[&[u8]], m: Message, usage: &'static CStr| {
        if rest.is_empty() {
            Ok(m)
        } else {
            Err(usage)
        }
    };
    match name {
        b"remap" => Ok(Message::Remap(block(rest, c"usage: remap <block>")?)),
        b"unremap" => Ok(Message::Unremap(block(rest, c"usage: unremap <block>")?)),
        b"query" => Ok(Message::Query(block(rest, c"usage: query <block>")?)),
        b"list" => {
            if rest.len() > 2 {
                return Err(c"usage: list [<start> [<count>]]");
            }
            let num = |i: usize| -> Result<Option<u64>, &'static CStr> {
                rest.get(i)
                    .map(|w| parse_u64(w).map_err(|_| c"list: start and count are decimal numbers"))
                    .transpose()
            };
            Ok(Message::List {
                start: num(0)?.unwrap_or(0),
                count: num(1)?,
            })
        }
        b"count" => none(rest, Message::Count, c"usage: count"),
        b"clear_errors" => none(rest, Message::ClearErrors, c"usage: clear_errors"),
        b"scan" => match rest {
            [word] => Ok(Message::Scan(parse_command(word)?)),
            _ => Err(c"usage: scan start|stop|pause|resume"),
        },
        b"help" => none(rest, Message::Help, c"usage: help"),
        _ => Err(c"unknown message; 'help' lists the messages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn parse(line: &str) -> Result<Message, &'static CStr> {
        let w: Vec<&[u8]> = line.split_ascii_whitespace().map(str::as_bytes).collect();
        parse_message(&w, 100)
    }

    #[test]
    fn good_messages() {
        assert_eq!(parse("remap 5"), Ok(Message::Remap(5)));
        assert_eq!(parse("unremap 99"), Ok(Message::Unremap(99)));
        assert_eq!(parse("query 0"), Ok(Message::Query(0)));
        assert_eq!(
            parse("list"),
            Ok(Message::List {
                start: 0,
                count: None
            })
        );
        assert_eq!(
            parse("list 7"),
            Ok(Message::List {
                start: 7,
                count: None
            })
        );
        assert_eq!(
            parse("list 7 3"),
            Ok(Message::List {
                start: 7,
                count: Some(3)
            })
        );
        assert_eq!(parse("count"), Ok(Message::Count));
        assert_eq!(parse("clear_errors"), Ok(Message::ClearErrors));
        assert_eq!(parse("help"), Ok(Message::Help));
        assert_eq!(parse("scan start"), Ok(Message::Scan(Command::Start)));
        assert_eq!(parse("scan stop"), Ok(Message::Scan(Command::Stop)));
        assert_eq!(parse("scan pause"), Ok(Message::Scan(Command::Pause)));
        assert_eq!(parse("scan resume"), Ok(Message::Scan(Command::Resume)));
    }

    #[test]
    fn bad_messages() {
        for (line, reason) in [
            ("", "empty message"),
            ("frobnicate", "unknown message"),
            ("remap", "usage: remap"),
            ("remap 1 2", "usage: remap"),
            ("remap x", "not a decimal number"),
            ("remap -1", "not a decimal number"),
            ("remap 100", "beyond the end"),
            ("unremap 18446744073709551616", "not a decimal number"),
            ("query", "usage: query"),
            ("list a", "decimal numbers"),
            ("list 1 2 3", "usage: list"),
            ("count 1", "usage: count"),
            ("help me", "usage: help"),
            ("scan", "usage: scan"),
            ("scan start now", "usage: scan"),
            ("scan go", "start, stop, pause and resume"),
        ] {
            let e = parse(line).unwrap_err().to_str().unwrap();
            assert!(e.contains(reason), "{line:?}: {e}");
        }
    }

    #[test]
    fn help_lists_every_message() {
        for m in [
            "remap",
            "unremap",
            "query",
            "list",
            "count",
            "clear_errors",
            "scan",
            "help",
        ] {
            assert!(HELP.lines().any(|l| l.split(' ').next() == Some(m)), "{m}");
        }
    }
}
