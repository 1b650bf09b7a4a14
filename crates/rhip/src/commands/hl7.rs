//! `rhip hl7 send`: an MLLP client for operators. Sends each message, waits
//! for its ACK before sending the next (as MLLP senders must), and prints
//! every ACK. Exit status: 0 when every message got AA, 2 when any was
//! refused (AE or AR), 1 when the connection failed.

use crate::cli::Hl7SendArgs;
use crate::Failure;
use anyhow::Context;
use rhip_hl7::mllp::{frame, Deframer, FrameEvent};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Runs `rhip hl7 send`.
pub fn send(args: &Hl7SendArgs) -> Result<(), Failure> {
    let mut messages = Vec::new();
    for file in &args.files {
        let bytes = std::fs::read(file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
        let found = split_messages(&bytes);
        if found.is_empty() {
            return Err(Failure::usage(format!("{} holds no HL7 message (no line starts with MSH)", file.display())));
        }
        messages.extend(found);
    }
    let mut stream = TcpStream::connect(&args.to).with_context(|| format!("connect to {}", args.to))?;
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    stream.set_read_timeout(Some(timeout)).context("set timeout")?;
    let mut deframer = Deframer::new(16 << 20);
    let mut refused = 0;
    for (index, message) in messages.iter().enumerate() {
        stream.write_all(&frame(message)).with_context(|| format!("send message {}", index + 1))?;
        let ack = read_ack(&mut stream, &mut deframer).with_context(|| format!("ACK of message {}", index + 1))?;
        let text = String::from_utf8_lossy(&ack);
        let code = rhip_hl7::AckCode::of(&ack);
        if code != Some(rhip_hl7::AckCode::Accept) {
            refused += 1;
        }
        println!("{}", text.trim_end_matches('\r').replace('\r', "\n"));
        println!();
    }
    eprintln!(
        "{} message(s) sent to {}, {} accepted, {refused} refused",
        messages.len(),
        args.to,
        messages.len() - refused
    );
    if refused > 0 {
        return Err(Failure::usage(format!("{refused} of {} message(s) were refused (AE or AR)", messages.len())));
    }
    Ok(())
}

fn read_ack(stream: &mut TcpStream, deframer: &mut Deframer) -> anyhow::Result<Vec<u8>> {
    let mut buffer = [0u8; 8192];
    loop {
        let count = stream.read(&mut buffer)?;
        if count == 0 {
            anyhow::bail!("the node closed the connection");
        }
        match deframer.push(&buffer[..count]).into_iter().next() {
            Some(FrameEvent::Message(ack)) => return Ok(ack),
            Some(FrameEvent::TooLarge { size }) => anyhow::bail!("answer of {size} bytes is too large"),
            Some(FrameEvent::Unframed { bytes }) => anyhow::bail!("{bytes} bytes outside an MLLP frame"),
            None => {}
        }
    }
}

/// Splits a file into messages: each starts at a line beginning with `MSH`;
/// blank lines, batch headers (FHS, BHS, BTS, FTS) and comment lines between
/// messages are dropped; line ends become the HL7 segment separator `\r`.
pub fn split_messages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    // CRLF is one line end, not a line end and a blank line.
    let mut normalised = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&byte) = iter.next() {
        if byte == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        normalised.push(byte);
    }
    for line in normalised.split(|b| *b == b'\n' || *b == b'\r') {
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        if line.starts_with(b"MSH") {
            if let Some(done) = current.take() {
                messages.push(done);
            }
            current = Some(Vec::new());
        }
        let blank = line.iter().all(u8::is_ascii_whitespace);
        let envelope = [b"FHS", b"BHS", b"BTS", b"FTS"].iter().any(|s| line.starts_with(*s));
        match &mut current {
            Some(message) if !blank && !envelope => {
                message.extend_from_slice(line);
                message.push(b'\r');
            }
            Some(_) if blank => {
                if let Some(done) = current.take() {
                    messages.push(done);
                }
            }
            _ => {}
        }
    }
    if let Some(done) = current {
        messages.push(done);
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::split_messages;

    #[test]
    fn files_split_on_msh_and_blank_lines() {
        let file = b"MSH|^~\\&|A\nPID|1\n\nMSH|^~\\&|B\r\nPID|2\r\nMSH|^~\\&|C\rPID|3\r";
        let messages = split_messages(file);
        assert_eq!(
            messages,
            vec![b"MSH|^~\\&|A\rPID|1\r".to_vec(), b"MSH|^~\\&|B\rPID|2\r".to_vec(), b"MSH|^~\\&|C\rPID|3\r".to_vec()]
        );
        assert!(split_messages(b"just text\n").is_empty());
        let batch = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|D\rPID|4\rBTS|1\rFTS|1\r";
        assert_eq!(split_messages(batch), vec![b"MSH|^~\\&|D\rPID|4\r".to_vec()]);
    }
}
