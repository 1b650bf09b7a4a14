//! Small closed vocabularies (tiers, roles, facility kinds, record kinds) that travel as
//! snake_case words in JSON, TOML, tokens and URLs.
//!
//! One macro gives every such enum the same `as_str`/`parse`/`ALL`/`Display`/`FromStr`
//! and serde behaviour, so the word a config file or API client sends is always exactly
//! the word the code prints, and a wrong word always gets the same helpful error.

/// A word that is not one of the names a closed vocabulary accepts.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{found:?} is not a valid {what}; expected one of: {expected}")]
pub struct UnknownNameError {
    /// What was being parsed, e.g. "facility kind".
    pub what: &'static str,
    /// The text that was received.
    pub found: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

/// Normalises a vocabulary word: trims, lowercases ASCII, maps `-` and spaces to `_`.
///
/// Operators type `node-admin` or `Hospital` on command lines; the canonical form is
/// still the one [`as_str`](crate::Role::as_str) prints.
pub(crate) fn normalise_word(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// Defines a fieldless enum whose variants have fixed snake_case names.
///
/// `error: |found, expected| EXPR` builds the parse error from the received text and the
/// comma-separated list of accepted names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
        error: $error:ty, |$found:ident, $expected:ident| $make_error:expr
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order (for menus, documentation and exhaustive tests).
            pub const ALL: [$name; <[&str]>::len(&[$($text),+])] = [$($name::$variant),+];

            /// The canonical snake_case name, as used in JSON, TOML and URLs.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            /// Parses a canonical name (case-insensitive; `-` and spaces count as `_`).
            pub fn parse(s: &str) -> Result<$name, $error> {
                let word = $crate::names::normalise_word(s);
                match word.as_str() {
                    $( $text => Ok($name::$variant), )+
                    _ => {
                        let $found = s.to_owned();
                        let $expected = [$($text),+].join(", ");
                        Err($make_error)
                    }
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                $name::parse(&text).map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Implements `Display`, `FromStr` and string serde for a type with
/// `as_str(&self) -> &str` and `parse(&str) -> Result<Self, E>`.
///
/// Used for validated newtypes (region codes, citizen IDs, ...) so that deserialising
/// untrusted JSON goes through exactly the same checks as parsing a form field.
macro_rules! string_newtype_traits {
    ($name:ident, $error:ty) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                $name::parse(&text).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use {named_enum, string_newtype_traits};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_normalised() {
        assert_eq!(normalise_word(" Node-Admin "), "node_admin");
        assert_eq!(normalise_word("hospital system"), "hospital_system");
    }
}
