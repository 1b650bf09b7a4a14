//! HL7 v2 for RHIP: hospitals send HL7 v2 messages (over MLLP or HTTP) to a node; this
//! crate turns their bytes into domain events and builds the ACKs that answer them.
//!
//! [`receive`] reads one message in steps, each answering one question for the sender:
//!
//! 1. **Bytes.** MSH-18 is found in the raw bytes (MSH is ASCII in every accepted charset)
//!    and the message is decoded: `UNICODE UTF-8`/`UNICODE`/`UTF-8`/empty as UTF-8 (strict),
//!    `GB18030`, `8859/1`; anything else is AR [`Rejection::UnsupportedCharset`]. A UTF-8
//!    BOM is stripped; CR, LF and CRLF all end a segment; blank lines are dropped.
//! 2. **Structure.** The message must start with MSH; its own delimiters (MSH-1/MSH-2, also
//!    custom ones and a fifth truncation character) are used; every line must be a segment.
//!    Segments, fields, repetitions, components and sub-components are split by the
//!    `hl7-parser` crate. Otherwise AR [`Rejection::Unreadable`].
//! 3. **Header.** MSH-12 must be 2.3 or later ([`Rejection::UnsupportedVersion`]) and MSH-9
//!    one of ADT^A01 A02 A03 A04 A05 A08 A11 A13 A28 A31 A40, ORU^R01, VXU^V04
//!    ([`Rejection::UnsupportedMessageType`]).
//! 4. **Content.** Segments are mapped into an [`Event`] with every value escape-decoded;
//!    every problem (required fields and segments, citizen ID and its agreement with birth
//!    date and sex, table values, dates) is collected into [`Received::Invalid`] (AE).
//!
//! [`ack`] / [`ack_for`] build the answer; [`encode`] puts it in the sender's charset and
//! [`mllp::frame`] frames it. Times are UTC; values without an offset are taken as China
//! Standard Time (+08:00).
//!
//! **Invariant:** no input makes this crate panic, and it does no I/O.

#![deny(missing_docs)]

mod ack;
mod charset;
pub mod dtm;
mod error;
pub mod escape;
pub mod mllp;
mod model;
mod receive;

pub use ack::{ack, ack_for, AckCode, AckSender, MAX_ERR_SEGMENTS};
pub use charset::{encode, Charset};
pub use error::{ErrorCode, Location, Problem, Rejection};
pub use escape::Delimiters;
pub use mllp::{frame, Deframer, FrameEvent};
pub use model::{Allergy, Cx, Diagnosis, Dose, Event, Insurance, NextOfKin, Observation, Order, Patient, Visit};
pub use receive::{receive, Header, Received};
