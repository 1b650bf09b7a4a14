//! Character sets named in MSH-18: finding the declaration in raw bytes, decoding the
//! message into text and encoding our answers back.
//!
//! Chinese hospital systems still send GB18030 (often without saying so in MSH-18, which we
//! then refuse rather than guess); newer ones send UTF-8. The declaration sits inside the
//! message it describes, so it is read from the raw bytes before anything is decoded: MSH
//! is ASCII in every accepted charset.

use encoding_rs::GB18030;

/// Character sets named in MSH-18 that this node decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Charset {
    /// UTF-8: MSH-18 `UNICODE UTF-8`, `UNICODE`, `UTF-8`, or empty (the default).
    Utf8,
    /// GB18030, the Chinese national standard: MSH-18 `GB18030`.
    Gb18030,
    /// ISO 8859-1 (Latin-1): MSH-18 `8859/1`.
    Latin1,
}

impl Charset {
    /// Reads an MSH-18 value (first component, trimmed, case-insensitive). Empty means
    /// the default, UTF-8; `ASCII` (HL7 table 0211) is read as UTF-8, of which it is a
    /// subset. `None` for anything else.
    pub fn from_msh18(value: &str) -> Option<Charset> {
        match value.trim().to_ascii_uppercase().as_str() {
            "" | "UNICODE UTF-8" | "UNICODE" | "UTF-8" | "ASCII" => Some(Charset::Utf8),
            "GB18030" => Some(Charset::Gb18030),
            "8859/1" => Some(Charset::Latin1),
            _ => None,
        }
    }

    /// The MSH-18 spelling we use in our own messages.
    pub fn hl7_name(&self) -> &'static str {
        match self {
            Charset::Utf8 => "UNICODE UTF-8",
            Charset::Gb18030 => "GB18030",
            Charset::Latin1 => "8859/1",
        }
    }
}

impl std::fmt::Display for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Charset::Utf8 => "UTF-8",
            Charset::Gb18030 => "GB18030",
            Charset::Latin1 => "ISO 8859-1",
        })
    }
}

/// Encodes an answer (an ACK) in the charset the sender used, so their engine can read it.
///
/// GB18030 covers all of Unicode; characters Latin-1 lacks become `?`.
pub fn encode(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 => text.as_bytes().to_vec(),
        Charset::Gb18030 => GB18030.encode(text).0.into_owned(),
        Charset::Latin1 => text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
    }
}

/// Decodes message bytes; on failure returns the offset (within `bytes`) of the first
/// byte that is not valid in `charset`.
pub(crate) fn decode(bytes: &[u8], charset: Charset) -> Result<String, usize> {
    match charset {
        Charset::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(error.valid_up_to()),
        },
        Charset::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Charset::Gb18030 => decode_gb18030(bytes),
    }
}

/// Strict GB18030 decoding that reports where the first malformed sequence starts.
fn decode_gb18030(bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let capacity = decoder.max_utf8_buffer_length_without_replacement(bytes.len()).unwrap_or(bytes.len() * 4);
    let mut text = String::with_capacity(capacity);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut text, true);
    match result {
        encoding_rs::DecoderResult::InputEmpty => Ok(text),
        encoding_rs::DecoderResult::Malformed(bad, after) => {
            Err(read.saturating_sub(usize::from(bad)).saturating_sub(usize::from(after)))
        }
        // The buffer was sized for the worst case; should it still be short, report the
        // first unread byte rather than loop.
        encoding_rs::DecoderResult::OutputFull => Err(read),
    }
}

/// Decodes bytes in a charset for the `\Xhh..\` escape; `None` if they are not valid.
pub(crate) fn decode_escaped_bytes(bytes: &[u8], charset: Charset) -> Option<String> {
    match charset {
        Charset::Utf8 => String::from_utf8(bytes.to_vec()).ok(),
        Charset::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Charset::Gb18030 => {
            GB18030.decode_without_bom_handling_and_without_replacement(bytes).map(std::borrow::Cow::into_owned)
        }
    }
}

/// What MSH-18 of a raw message says, found before decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    /// An accepted charset.
    Known(Charset),
    /// A value we do not decode (as received, lossily decoded).
    Unsupported(String),
}

/// Finds MSH-18 in raw bytes starting with `MSH`.
///
/// The MSH line is split on its field separator byte. That is exact for UTF-8 and
/// Latin-1 (their non-ASCII bytes are never ASCII), but a GB18030 trail byte can equal
/// `|` or `^`, so when the plain reading finds no explicit accepted value the line is read
/// again decoded as GB18030.
pub(crate) fn sniff(raw: &[u8]) -> Declared {
    let line_end = raw.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(raw.len());
    let line = raw.get(..line_end).unwrap_or(raw);
    let plain = msh18_of(&String::from_utf8_lossy(line));
    let plain_charset = Charset::from_msh18(&plain);
    if let (Some(charset), false) = (plain_charset, plain.trim().is_empty()) {
        return Declared::Known(charset);
    }
    let (as_gb, _, _) = GB18030.decode(line);
    if Charset::from_msh18(&msh18_of(&as_gb)) == Some(Charset::Gb18030) {
        return Declared::Known(Charset::Gb18030);
    }
    match plain_charset {
        Some(charset) => Declared::Known(charset),
        None => Declared::Unsupported(plain.trim().to_owned()),
    }
}

/// The first component of MSH-18 of an MSH line (empty if absent).
fn msh18_of(line: &str) -> String {
    let mut chars = line.chars().skip(3);
    let Some(field_separator) = chars.next() else {
        return String::new();
    };
    let component = chars.next().unwrap_or('^');
    let repetition = chars.next().unwrap_or('~');
    // Field 1 is the separator itself, so the n-th piece after splitting is MSH-(n+1).
    let value = line.split(field_separator).nth(17).unwrap_or_default();
    let first_repetition = value.split(repetition).next().unwrap_or_default();
    first_repetition.split(component).next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_spellings() {
        for (value, expected) in [
            ("", Some(Charset::Utf8)),
            ("UNICODE UTF-8", Some(Charset::Utf8)),
            ("unicode", Some(Charset::Utf8)),
            ("UTF-8", Some(Charset::Utf8)),
            (" GB18030 ", Some(Charset::Gb18030)),
            ("8859/1", Some(Charset::Latin1)),
            ("ASCII", Some(Charset::Utf8)),
            ("GB2312", None),
            ("8859/15", None),
        ] {
            assert_eq!(Charset::from_msh18(value), expected, "{value}");
        }
    }

    #[test]
    fn sniffing_finds_msh18() {
        let msh = |eighteen: &str| format!("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5|||||CHN|{eighteen}\rPID|1");
        assert_eq!(sniff(msh("GB18030").as_bytes()), Declared::Known(Charset::Gb18030));
        assert_eq!(sniff(msh("UNICODE UTF-8^x").as_bytes()), Declared::Known(Charset::Utf8));
        assert_eq!(sniff(msh("").as_bytes()), Declared::Known(Charset::Utf8));
        assert_eq!(sniff(b"MSH|^~\\&|A"), Declared::Known(Charset::Utf8));
        assert_eq!(sniff(msh("ISO IR87").as_bytes()), Declared::Unsupported("ISO IR87".into()));
        // A GB18030 facility name whose trail byte is '|' (0x7C) shifts the plain split.
        let Some(tricky) = ('\u{4e00}'..='\u{9fa5}').find(|c| GB18030.encode(&c.to_string()).0.contains(&b'|')) else {
            panic!("no CJK character with a '|' trail byte in GB18030");
        };
        let facility = format!("{tricky}院");
        let (name, _, _) = GB18030.encode(&facility);
        let mut raw = b"MSH|^~\\&|A|".to_vec();
        raw.extend_from_slice(&name);
        raw.extend_from_slice(b"|C|D|20250101||ADT^A01|1|P|2.5|||||CHN|GB18030\r");
        assert_eq!(sniff(&raw), Declared::Known(Charset::Gb18030));
    }

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(decode("张伟".as_bytes(), Charset::Utf8), Ok("张伟".to_owned()));
        assert_eq!(decode(b"ab\xffcd", Charset::Utf8), Err(2));
        let gb = encode("张伟|", Charset::Gb18030);
        assert_ne!(gb, "张伟|".as_bytes());
        assert_eq!(decode(&gb, Charset::Gb18030), Ok("张伟|".to_owned()));
        assert_eq!(decode(b"abc\x81\x20", Charset::Gb18030), Err(3));
        assert_eq!(decode(b"M\xfcller", Charset::Latin1), Ok("Müller".to_owned()));
        assert_eq!(encode("Müller 张", Charset::Latin1), b"M\xfcller ?");
        assert_eq!(decode_escaped_bytes(&[0xe5, 0xbc, 0xa0], Charset::Utf8), Some("张".to_owned()));
        assert_eq!(decode_escaped_bytes(&[0xe5], Charset::Utf8), None);
    }
}
