//! MLLP framing (start 0x0B, end 0x1C 0x0D): wrapping answers and cutting a TCP byte
//! stream into message payloads.
//!
//! The deframer is a byte-at-a-time state machine with a size limit, so a peer that never
//! ends a frame, sends a huge one or does not speak MLLP costs bounded memory, and frames
//! split across reads (or several in one read) come out whole and in order.

/// The byte that starts a frame (VT).
pub const START_BLOCK: u8 = 0x0b;
/// The two bytes that end a frame (FS CR).
pub const END_BLOCK: [u8; 2] = [0x1c, 0x0d];

/// Wraps one payload (an ACK) in a frame.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(payload.len() + 3);
    framed.push(START_BLOCK);
    framed.extend_from_slice(payload);
    framed.extend_from_slice(&END_BLOCK);
    framed
}

/// What the deframer found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// One complete message payload (without the framing bytes).
    Message(Vec<u8>),
    /// A frame exceeded the maximum size; its bytes up to the next end block are discarded
    /// and the deframer resynchronises on the next 0x0B.
    TooLarge {
        /// Payload bytes seen in the frame (at least the maximum plus one).
        size: usize,
    },
    /// Bytes outside any frame (not whitespace): the peer is not speaking MLLP; the server
    /// closes the connection.
    Unframed {
        /// How many such bytes were seen (in one run).
        bytes: usize,
    },
}

/// Where the deframer is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// Just after a 0x1C: a following 0x0D belongs to the end block.
    AfterEnd,
    /// Inside a frame, collecting its payload.
    InFrame,
    /// Inside a frame that is too large, counting its bytes.
    Discarding {
        /// Payload bytes of the frame so far.
        size: usize,
    },
}

/// Incremental deframer for one connection.
#[derive(Debug, Clone)]
pub struct Deframer {
    max_message_bytes: usize,
    state: State,
    buffer: Vec<u8>,
}

impl Deframer {
    /// A deframer that refuses payloads longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Deframer {
        Deframer { max_message_bytes, state: State::Idle, buffer: Vec::new() }
    }

    /// Feed bytes as they arrive; returns complete events in order.
    ///
    /// A frame ends at 0x1C (the 0x0D after it is expected and swallowed; a lone 0x1C is
    /// accepted from lax senders). A 0x0B inside a frame restarts it: the bytes before are
    /// an unterminated frame and are dropped. Whitespace between frames is ignored; other
    /// bytes there are reported as one `Unframed` event per run.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<FrameEvent> {
        let mut events = Vec::new();
        let mut unframed = 0usize;
        for &byte in bytes {
            match self.state {
                State::Idle | State::AfterEnd => {
                    if byte == START_BLOCK {
                        flush_unframed(&mut events, &mut unframed);
                        self.buffer.clear();
                        self.state = State::InFrame;
                    } else if self.state == State::AfterEnd && byte == END_BLOCK[1] {
                        self.state = State::Idle;
                    } else {
                        self.state = State::Idle;
                        if !byte.is_ascii_whitespace() {
                            unframed = unframed.saturating_add(1);
                        }
                    }
                }
                State::InFrame => {
                    if byte == END_BLOCK[0] {
                        events.push(FrameEvent::Message(std::mem::take(&mut self.buffer)));
                        self.state = State::AfterEnd;
                    } else if byte == START_BLOCK {
                        self.buffer.clear();
                    } else if self.buffer.len() >= self.max_message_bytes {
                        let size = self.buffer.len().saturating_add(1);
                        self.buffer = Vec::new();
                        self.state = State::Discarding { size };
                    } else {
                        self.buffer.push(byte);
                    }
                }
                State::Discarding { size } => {
                    if byte == END_BLOCK[0] {
                        events.push(FrameEvent::TooLarge { size });
                        self.state = State::AfterEnd;
                    } else if byte == START_BLOCK {
                        events.push(FrameEvent::TooLarge { size });
                        self.buffer.clear();
                        self.state = State::InFrame;
                    } else {
                        self.state = State::Discarding { size: size.saturating_add(1) };
                    }
                }
            }
        }
        flush_unframed(&mut events, &mut unframed);
        events
    }

    /// True if a frame has started but not ended (for idle-timeout decisions).
    pub fn in_frame(&self) -> bool {
        matches!(self.state, State::InFrame | State::Discarding { .. })
    }
}

/// Emits a pending run of unframed bytes.
fn flush_unframed(events: &mut Vec<FrameEvent>, unframed: &mut usize) {
    if *unframed > 0 {
        events.push(FrameEvent::Unframed { bytes: *unframed });
        *unframed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(text: &str) -> FrameEvent {
        FrameEvent::Message(text.as_bytes().to_vec())
    }

    #[test]
    fn frame_wraps() {
        assert_eq!(frame(b"MSH|"), b"\x0bMSH|\x1c\x0d");
    }

    /// (chunks fed in order, expected events in order, in_frame at the end)
    type Case = (&'static [&'static [u8]], Vec<FrameEvent>, bool);

    #[test]
    fn deframing_table() {
        let cases: Vec<Case> = vec![
            (&[b"\x0bMSH|1\x1c\x0d"], vec![message("MSH|1")], false),
            (&[b"\x0bMSH|1\x1c\x0d\x0bMSH|2\x1c\x0d"], vec![message("MSH|1"), message("MSH|2")], false),
            (&[b"\x0bMS", b"H|1\x1c", b"\x0d"], vec![message("MSH|1")], false),
            (&[b"\x0bMSH|1"], vec![], true),
            (&[b"\x0bMSH|1\x1c"], vec![message("MSH|1")], false),
            (&[b"\r\n \x0bMSH|1\x1c\x0d\r\n"], vec![message("MSH|1")], false),
            (&[b"\x0b\x1c\x0d"], vec![message("")], false),
            (&[b"GET / HTTP/1.1\r\n"], vec![FrameEvent::Unframed { bytes: 12 }], false),
            (
                &[b"xx\x0bMSH|1\x1c\x0dyy"],
                vec![FrameEvent::Unframed { bytes: 2 }, message("MSH|1"), FrameEvent::Unframed { bytes: 2 }],
                false,
            ),
            (&[b"\x0bpartial\x0bMSH|1\x1c\x0d"], vec![message("MSH|1")], false),
            (&[b"\x0b0123456789\x1c\x0d"], vec![message("0123456789")], false),
            (
                &[b"\x0b0123456789A\x1c\x0d\x0bok\x1c\x0d"],
                vec![FrameEvent::TooLarge { size: 11 }, message("ok")],
                false,
            ),
            (&[b"\x0b0123456789ABCDEF", b"GHIJ"], vec![], true),
            (&[b"\x0b0123456789ABCDEF", b"GHIJ\x1c\x0d"], vec![FrameEvent::TooLarge { size: 20 }], false),
            (&[b"\x0b0123456789ABCDEF\x0bok\x1c\x0d"], vec![FrameEvent::TooLarge { size: 16 }, message("ok")], false),
        ];
        for (chunks, expected, in_frame) in cases {
            let mut deframer = Deframer::new(10);
            let events: Vec<FrameEvent> = chunks.iter().flat_map(|chunk| deframer.push(chunk)).collect();
            assert_eq!(events, expected, "{chunks:?}");
            assert_eq!(deframer.in_frame(), in_frame, "{chunks:?}");
        }
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            payloads in proptest::collection::vec("[A-Z|^~&\\r0-9]{0,40}", 1..5),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p.as_bytes())).collect();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            points.sort_unstable();
            let mut deframer = Deframer::new(1000);
            let mut events = Vec::new();
            let mut previous = 0;
            for point in points.into_iter().chain([stream.len()]) {
                events.extend(deframer.push(stream.get(previous..point).unwrap_or_default()));
                previous = point;
            }
            let expected: Vec<FrameEvent> = payloads.iter().map(|p| message(p)).collect();
            prop_assert_eq!(events, expected);
            prop_assert!(!deframer.in_frame());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_memory_is_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        ) {
            let mut deframer = Deframer::new(64);
            for chunk in chunks {
                for event in deframer.push(&chunk) {
                    if let FrameEvent::Message(payload) = event {
                        prop_assert!(payload.len() <= 64);
                    }
                }
                prop_assert!(deframer.buffer.len() <= 64);
            }
        }
    }
}
