//! A JSON value kept as its text.
//!
//! A change's record travels from the change log of one node into the change log of the
//! next, hop after hop; every node reads it once (to apply it) but forwards it as it came.
//! Holding it as checked JSON text instead of a `serde_json::Value` tree means it is not
//! rebuilt and written again at each step: the text is copied, and read straight into the
//! record type when it is applied.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Valid JSON text, compact or not, written out exactly as it was read.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// Checks `text` is one JSON value and keeps it as it is.
    pub fn from_text(text: String) -> Result<JsonText, serde_json::Error> {
        RawValue::from_string(text).map(JsonText)
    }

    /// The compact text of `value`.
    pub fn from_value(value: &serde_json::Value) -> JsonText {
        // A `Value` always serialises, and its text is always one JSON value.
        let text = value.to_string();
        JsonText(RawValue::from_string(text).unwrap_or_else(|_| null()))
    }

    /// The compact text of any serialisable record.
    pub fn of<T: Serialize>(record: &T) -> Result<JsonText, serde_json::Error> {
        serde_json::value::to_raw_value(record).map(JsonText)
    }

    /// The text, as it was read.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text read into `T`, without an intermediate tree.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The text as a `serde_json::Value`, for the rare caller that edits it.
    pub fn to_value(&self) -> serde_json::Value {
        // The text was checked when it was made, so it always parses.
        self.parse().unwrap_or(serde_json::Value::Null)
    }

    /// Changes the value through a `serde_json::Value` and keeps the result's
    /// compact text (for tools and tests that rewrite a record).
    pub fn edit(&mut self, change: impl FnOnce(&mut serde_json::Value)) {
        let mut value = self.to_value();
        change(&mut value);
        *self = JsonText::from_value(&value);
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.0.get().trim_start().starts_with('{')
    }
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

impl Default for JsonText {
    fn default() -> JsonText {
        JsonText(null())
    }
}

impl PartialEq for JsonText {
    /// Equal when the texts are, or when they hold the same value written
    /// differently (spacing, escapes, key order).
    fn eq(&self, other: &JsonText) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(value: serde_json::Value) -> JsonText {
        JsonText::from_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_and_compared_by_value() {
        let spaced = JsonText::from_text("{ \"b\": 1, \"a\": [true] }".to_owned()).unwrap();
        assert_eq!(spaced.get(), "{ \"b\": 1, \"a\": [true] }");
        assert_eq!(spaced, JsonText::from_value(&serde_json::json!({"a": [true], "b": 1})));
        assert_ne!(spaced, JsonText::from_value(&serde_json::json!({"a": [false], "b": 1})));
        assert!(spaced.is_object());
        assert!(!JsonText::default().is_object());
        assert!(JsonText::from_text("{\"a\":".to_owned()).is_err());
        assert!(JsonText::from_text("1 2".to_owned()).is_err());
    }

    #[test]
    fn records_are_read_straight_from_the_text() {
        #[derive(Deserialize, Serialize, PartialEq, Debug)]
        struct Record {
            name: String,
        }
        let text = JsonText::of(&Record { name: "张三".into() }).unwrap();
        assert_eq!(text.get(), "{\"name\":\"张三\"}");
        assert_eq!(text.parse::<Record>().unwrap(), Record { name: "张三".into() });
        let wrapped: Vec<JsonText> = serde_json::from_str("[{\"x\": 1}, null]").unwrap();
        assert_eq!(serde_json::to_string(&wrapped).unwrap(), "[{\"x\": 1},null]");
    }
}
