//! Delimiters (MSH-1, MSH-2) and HL7 escape sequences (`\F\ \S\ \T\ \R\ \E\ \Xhh..\
//! \.br\` …), in both directions.
//!
//! Every message brings its own delimiters, so nothing here assumes `|^~\&`: the corpus has
//! senders whose field separator is `^`. Decoding is strict about one thing only: an escape
//! character without its closing partner, which means the value was cut or the sender did
//! not escape a literal backslash, and either way the value cannot be trusted.

use crate::charset::{decode_escaped_bytes, Charset};

/// The five delimiters of a message: MSH-1 and the four characters of MSH-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delimiters {
    /// Field separator (MSH-1), usually `|`.
    pub field: char,
    /// Component separator, usually `^`.
    pub component: char,
    /// Repetition separator, usually `~`.
    pub repetition: char,
    /// Escape character, usually `\`.
    pub escape: char,
    /// Sub-component separator, usually `&`.
    pub subcomponent: char,
}

impl Delimiters {
    /// `|^~\&`, used when the received message's delimiters are unknown.
    pub const STANDARD: Delimiters =
        Delimiters { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

    /// Reads MSH-1 and MSH-2 from the first line of a message (which starts with `MSH`).
    ///
    /// Returns the delimiters, MSH-2 as received (4 characters, or 5 with the v2.7
    /// truncation character) and the byte index in `line` just after MSH-2. All five
    /// delimiters must be distinct printable ASCII characters that are not letters or
    /// digits; anything else cannot be split reliably.
    pub fn from_msh(line: &str) -> Result<(Delimiters, String, usize), String> {
        let rest = line.strip_prefix("MSH").ok_or_else(|| "no MSH segment at the start".to_owned())?;
        let mut chars = rest.chars();
        let Some(field) = chars.next() else {
            return Err("MSH has no field separator (MSH-1)".to_owned());
        };
        let encoding: String = chars.take_while(|&c| c != field && c != '\r' && c != '\n').collect();
        let usable = |c: char| c.is_ascii_graphic() && !c.is_ascii_alphanumeric();
        if !usable(field) {
            return Err(format!(
                "MSH-1 field separator {field:?} must be a printable ASCII character other than a letter or digit"
            ));
        }
        let list: Vec<char> = encoding.chars().collect();
        if !(4..=5).contains(&list.len()) {
            return Err(format!(
                "MSH-2 encoding characters {encoding:?} must be 4 characters (component, repetition, escape, \
                 sub-component) or 5 with the truncation character"
            ));
        }
        let mut all = vec![field];
        all.extend(&list);
        for (index, &c) in all.iter().enumerate() {
            if !usable(c) {
                return Err(format!(
                    "MSH-2 encoding character {c:?} must be a printable ASCII character other than a letter or digit"
                ));
            }
            if all.iter().take(index).any(|&earlier| earlier == c) {
                return Err(format!("delimiter {c:?} appears twice in MSH-1/MSH-2 {field}{encoding}"));
            }
        }
        let (component, repetition, escape, subcomponent) = match list.as_slice() {
            [c, r, e, s, ..] => (*c, *r, *e, *s),
            _ => return Err("MSH-2 is too short".to_owned()),
        };
        let end = 3 + field.len_utf8() + encoding.len();
        Ok((Delimiters { field, component, repetition, escape, subcomponent }, encoding, end))
    }

    /// MSH-2 for these delimiters (4 characters).
    pub fn encoding_characters(&self) -> String {
        [self.component, self.repetition, self.escape, self.subcomponent].iter().collect()
    }

    /// The same delimiters in `hl7-parser`'s form.
    pub(crate) fn separators(&self) -> hl7_parser::message::Separators {
        hl7_parser::message::Separators {
            field: self.field,
            component: self.component,
            subcomponent: self.subcomponent,
            repetition: self.repetition,
            escape: self.escape,
            lenient_newlines: false,
        }
    }

    /// Escapes text for a value of an outgoing message: delimiters become `\F\ \S\ \T\ \R\
    /// \E\`, CR and LF become `\X0D\` and `\X0A\`, other control characters are dropped.
    pub fn escape(&self, text: &str) -> String {
        let e = self.escape;
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c == e {
                out.extend([e, 'E', e]);
            } else if c == self.field {
                out.extend([e, 'F', e]);
            } else if c == self.component {
                out.extend([e, 'S', e]);
            } else if c == self.subcomponent {
                out.extend([e, 'T', e]);
            } else if c == self.repetition {
                out.extend([e, 'R', e]);
            } else if c == '\r' {
                out.push(e);
                out.push_str("X0D");
                out.push(e);
            } else if c == '\n' {
                out.push(e);
                out.push_str("X0A");
                out.push(e);
            } else if !c.is_control() {
                out.push(c);
            }
        }
        out
    }
}

/// Why a value's escapes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// An escape character starts a sequence that never ends.
    #[error("unterminated escape sequence (an escape character {0:?} without its closing partner)")]
    Unterminated(char),
    /// A `\X..\` sequence is not an even number of hex digits, or its bytes are not valid
    /// in the message's charset.
    #[error("invalid hexadecimal escape \\X{0}\\ for the message's character set")]
    BadHex(String),
}

/// Decodes the escape sequences of one (sub-component) value.
///
/// `\F\ \S\ \T\ \R\ \E\` give the delimiters, `\P\` the truncation character when one is
/// declared, `\Xhh..\` the bytes in the message's charset, `\.br\` and `\.sp\` a line break;
/// highlighting (`\H\ \N\`), charset switches (`\C..\ \M..\`), local (`\Z..\`) and other
/// formatting commands are dropped. An unknown sequence is kept as written. On error the
/// caller still gets the best-effort text in [`decode_lenient`].
pub fn decode(
    raw: &str,
    delimiters: &Delimiters,
    truncation: Option<char>,
    charset: Charset,
) -> Result<String, EscapeError> {
    let (text, error) = decode_lenient(raw, delimiters, truncation, charset);
    match error {
        Some(error) => Err(error),
        None => Ok(text),
    }
}

/// [`decode`], returning the best-effort text together with the first error, so a header
/// can still be echoed when one of its values is broken.
pub fn decode_lenient(
    raw: &str,
    delimiters: &Delimiters,
    truncation: Option<char>,
    charset: Charset,
) -> (String, Option<EscapeError>) {
    let e = delimiters.escape;
    let mut out = String::with_capacity(raw.len());
    let mut error = None;
    let mut rest = raw;
    while let Some(start) = rest.find(e) {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + e.len_utf8()..).unwrap_or_default();
        let Some(end) = after.find(e) else {
            error.get_or_insert(EscapeError::Unterminated(e));
            out.push(e);
            rest = after;
            break;
        };
        let sequence = after.get(..end).unwrap_or_default();
        rest = after.get(end + e.len_utf8()..).unwrap_or_default();
        match sequence {
            "F" => out.push(delimiters.field),
            "S" => out.push(delimiters.component),
            "T" => out.push(delimiters.subcomponent),
            "R" => out.push(delimiters.repetition),
            "E" => out.push(e),
            "H" | "N" => {}
            "P" if truncation.is_some() => out.extend(truncation),
            // Two escape characters in a row: no sequence; senders mean one literal.
            "" => out.push(e),
            _ => {
                if let Some(hex) = sequence.strip_prefix('X') {
                    match hex_bytes(hex).and_then(|bytes| decode_escaped_bytes(&bytes, charset)) {
                        Some(text) => out.push_str(&text),
                        None => {
                            error.get_or_insert(EscapeError::BadHex(hex.to_owned()));
                        }
                    }
                } else if let Some(command) = sequence.strip_prefix('.') {
                    if command == "br" || command.starts_with("sp") {
                        out.push('\n');
                    }
                } else if sequence.starts_with(['C', 'M', 'Z']) {
                    // Charset switches and locally defined escapes carry no text for us.
                } else {
                    out.push(e);
                    out.push_str(sequence);
                    out.push(e);
                }
            }
        }
    }
    out.push_str(rest);
    (out, error)
}

/// Parses an even number of hex digits.
fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: Delimiters = Delimiters::STANDARD;

    fn dec(raw: &str) -> Result<String, EscapeError> {
        decode(raw, &STD, None, Charset::Utf8)
    }

    #[test]
    fn delimiters_from_msh() {
        let Ok((d, msh2, end)) = Delimiters::from_msh("MSH|^~\\&|APP") else { panic!("standard") };
        assert_eq!((d, msh2.as_str(), end), (STD, "^~\\&", 8));
        let Ok((d, msh2, end)) = Delimiters::from_msh("MSH^~|\\&^SENDING") else { panic!("custom") };
        assert_eq!((d.field, d.component, d.repetition, d.escape, d.subcomponent), ('^', '~', '|', '\\', '&'));
        assert_eq!((msh2.as_str(), end), ("~|\\&", 8));
        let Ok((d, msh2, end)) = Delimiters::from_msh("MSH|^~\\&#|APP") else { panic!("truncation") };
        assert_eq!((d, msh2.as_str(), end), (STD, "^~\\&#", 9));
        assert!(Delimiters::from_msh("MSH|^~\\&").is_ok());
        for bad in [
            "MSH|&&&&|A",
            "MSH|^|||",
            "MSH|^~}|A",
            "MSH|^ \\E|A",
            "MSH",
            "MSH|^~\\&ab|",
            "MSHA^~\\&|",
            "MSH|^~\u{fd}00|",
        ] {
            assert!(Delimiters::from_msh(bad).is_err(), "{bad}");
        }
        assert_eq!(STD.encoding_characters(), "^~\\&");
    }

    #[test]
    fn decoding() {
        assert_eq!(dec("plain"), Ok("plain".into()));
        assert_eq!(dec(r"A\F\B\S\C\T\D\R\E\E\F"), Ok("A|B^C&D~E\\F".into()));
        assert_eq!(dec(r"line1\.br\line2"), Ok("line1\nline2".into()));
        assert_eq!(dec(r"\H\bold\N\"), Ok("bold".into()));
        assert_eq!(dec(r"\X0D0A\"), Ok("\r\n".into()));
        assert_eq!(dec(r"\XE5BCA0\伟"), Ok("张伟".into()));
        assert_eq!(dec(r"\Zcustom\x"), Ok("x".into()));
        assert_eq!(dec(r"a\\b"), Ok("a\\b".into()));
        assert_eq!(dec(r"\Q\"), Ok(r"\Q\".into()));
        assert_eq!(dec(r"C:\temp"), Err(EscapeError::Unterminated('\\')));
        assert_eq!(dec(r"\X0\"), Err(EscapeError::BadHex("0".into())));
        assert_eq!(dec(r"\XZZ\"), Err(EscapeError::BadHex("ZZ".into())));
        assert_eq!(dec(r"\XE5\"), Err(EscapeError::BadHex("E5".into())));
        assert_eq!(decode(r"\XC4E3\", &STD, None, Charset::Gb18030), Ok("你".into()));
        assert_eq!(decode(r"\XE9\", &STD, None, Charset::Latin1), Ok("é".into()));
        assert_eq!(decode(r"a\P\b", &STD, Some('#'), Charset::Utf8), Ok("a#b".into()));
        let (text, error) = decode_lenient(r"ok\T\then\broken", &STD, None, Charset::Utf8);
        assert_eq!(text, "ok&then\\broken");
        assert!(error.is_some());
    }

    #[test]
    fn custom_delimiters_round_trip() {
        let custom = Delimiters { field: '^', component: '~', repetition: '|', escape: '\\', subcomponent: '&' };
        let text = "a^b~c|d&e\\f\r\n张";
        let escaped = custom.escape(text);
        assert!(!escaped.contains(['^', '~', '|', '&', '\r', '\n']));
        assert_eq!(decode(&escaped, &custom, None, Charset::Utf8), Ok(text.to_owned()));
        assert_eq!(dec(&STD.escape("x|y^z~w&v\\u")), Ok("x|y^z~w&v\\u".into()));
    }
}
