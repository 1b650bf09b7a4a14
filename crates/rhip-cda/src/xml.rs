//! The guarded XML layer: bytes in, a small element tree out, or a [`Rejected`] that says
//! where the bytes stopped being acceptable.
//!
//! Everything hostile is stopped here, before any CDA meaning is looked at:
//!
//! - **Size** is checked on the byte count before decoding or parsing anything.
//! - **Encoding** comes from a UTF-8 BOM or the XML declaration: UTF-8 (also `US-ASCII`)
//!   is decoded strictly, GB18030/GBK/GB2312 with `encoding_rs` (GB18030 is a superset of
//!   both), anything else is refused. UTF-16 is refused.
//! - **DTDs** are refused outright: any `<!DOCTYPE` is a problem, so there are no entity
//!   declarations to expand (no billion laughs, no external entities). quick-xml itself
//!   only resolves the five predefined entities and character references; any other
//!   `&name;` is a problem.
//! - **Depth, attributes per element and element count** are counted while the tree is
//!   built, and reading stops at the first element over a limit.
//!
//! The tree keeps element local names, whether the element is in the HL7 v3 namespace,
//! attributes by local name (`xsi:type` is `type`; namespace declarations are dropped) and
//! text. That is all the CDA extraction needs.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;

use crate::limits::Limits;
use crate::problem::Rejected;

/// The HL7 v3 namespace, which every CDA element is in.
pub(crate) const HL7_NAMESPACE: &str = "urn:hl7-org:v3";

/// An element of the parsed tree.
#[derive(Debug, Default)]
pub(crate) struct Element {
    /// The local name (`section`, not `cda:section`).
    pub name: String,
    /// The namespace URI, when the name's prefix (or the default namespace) is bound.
    pub namespace: Option<String>,
    /// Attributes by local name, in document order, unescaped.
    pub attributes: Vec<(String, String)>,
    /// Child elements and text, in document order.
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug)]
pub(crate) enum Node {
    /// A child element.
    Element(Element),
    /// Text or CDATA, unescaped.
    Text(String),
}

impl Element {
    /// True when this element is in the HL7 v3 namespace.
    pub fn is_hl7(&self) -> bool {
        self.namespace.as_deref() == Some(HL7_NAMESPACE)
    }

    /// Child elements in the HL7 v3 namespace with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |child| child.name == name && child.is_hl7())
    }

    /// The first HL7 v3 child element with this local name.
    pub fn child<'a>(&'a self, name: &'a str) -> Option<&'a Element> {
        self.children_named(name).next()
    }

    /// Follows a `/`-separated chain of first children (`"assignedAuthor/assignedPerson"`).
    pub fn descend<'a>(&'a self, path: &'a str) -> Option<&'a Element> {
        path.split('/').try_fold(self, |element, name| element.child(name))
    }

    /// All child elements, in any namespace.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The value of the attribute with this local name, trimmed; `None` when absent or empty.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The text of this element and all its descendants, whitespace collapsed to single
    /// spaces; block-like children are separated by a space.
    pub fn text(&self) -> String {
        let mut raw = String::new();
        self.collect_text(&mut raw);
        raw.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The text directly inside this element (not in children), whitespace collapsed.
    pub fn own_text(&self) -> String {
        let mut raw = String::new();
        for node in &self.children {
            if let Node::Text(text) = node {
                raw.push_str(text);
            }
        }
        raw.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Appends the text of this subtree to `into`.
    fn collect_text(&self, into: &mut String) {
        for node in &self.children {
            match node {
                Node::Text(text) => into.push_str(text),
                Node::Element(element) => {
                    into.push(' ');
                    element.collect_text(into);
                    into.push(' ');
                }
            }
        }
    }
}

/// Decodes and parses a document into its root element, within `limits`.
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Element, Rejected> {
    if bytes.len() > limits.max_bytes {
        return Err(Rejected::one(
            "/",
            format!("a document of at most {} bytes; got {} bytes (not parsed)", limits.max_bytes, bytes.len()),
        ));
    }
    let text = decode(bytes)?;
    build_tree(&text, limits)
}

/// Turns the bytes into text according to the BOM or the XML declaration.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, Rejected> {
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        return Err(Rejected::one("/", "UTF-8 or GB18030 text; found a UTF-16 byte order mark"));
    }
    let (body, offset) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => (rest, 3),
        None => (bytes, 0),
    };
    // A UTF-8 BOM is authoritative; otherwise the declaration decides, UTF-8 by default.
    let declared = if offset == 3 { None } else { declared_encoding(body) };
    match declared.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => match std::str::from_utf8(body) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            Err(error) => Err(Rejected::one(
                "/",
                format!(
                    "UTF-8 text (as declared or by default); invalid UTF-8 byte sequence at byte {}",
                    error.valid_up_to() + offset
                ),
            )),
        },
        Some("gb18030" | "gbk" | "gb2312" | "cp936" | "x-gbk" | "euc-cn") => {
            match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(body) {
                Some(text) => Ok(Cow::Owned(text.into_owned())),
                None => Err(Rejected::one("/", "GB18030 text (as declared); found an invalid GB18030 byte sequence")),
            }
        }
        Some(other) => Err(Rejected::one(
            "/",
            format!("encoding UTF-8, GB18030, GBK or GB2312 in the XML declaration; found '{other}'"),
        )),
    }
}

/// The `encoding` pseudo-attribute of a leading XML declaration, lower-cased.
fn declared_encoding(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"<?xml")?;
    let declaration = &body[..body.windows(2).take(1024).position(|pair| pair == b"?>")?];
    let at = declaration.windows(8).position(|window| window == b"encoding")?;
    let rest = declaration[at + 8..].trim_ascii_start().strip_prefix(b"=")?.trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &rest[1..];
    let end = value.iter().position(|&byte| byte == quote)?;
    Some(String::from_utf8_lossy(&value[..end]).trim().to_ascii_lowercase())
}

/// The path of the innermost open element, e.g. `/ClinicalDocument/component`.
fn path_of(stack: &[Element]) -> String {
    if stack.is_empty() {
        return "/".to_owned();
    }
    stack.iter().map(|element| format!("/{}", element.name)).collect()
}

/// Parses decoded text into a tree, enforcing the structural limits.
fn build_tree(text: &str, limits: &Limits) -> Result<Element, Rejected> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut element_count = 0usize;
    loop {
        let position = reader.buffer_position();
        let event = match reader.read_resolved_event() {
            Ok(event) => event,
            Err(error) => {
                return Err(Rejected::one(
                    path_of(&stack),
                    format!("well-formed XML; the parser stopped near byte {position}: {error}"),
                ))
            }
        };
        match event {
            (namespace, Event::Start(start)) => {
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if root.is_some() {
                    return Err(Rejected::one("/", format!("a single root element; found <{local}> after it")));
                }
                element_count += 1;
                // Paths are only built when there is a problem to report: building one per
                // element would cost O(depth) for every element read.
                let path = || format!("{}/{local}", path_of(&stack).trim_end_matches('/'));
                if element_count > limits.max_elements {
                    return Err(Rejected::one(
                        path(),
                        format!("at most {} elements in the document", limits.max_elements),
                    ));
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(Rejected::one(path(), format!("elements nested at most {} deep", limits.max_depth)));
                }
                let mut attributes = Vec::new();
                for (index, attribute) in start.attributes().enumerate() {
                    if index >= limits.max_attributes {
                        return Err(Rejected::one(
                            path(),
                            format!("at most {} attributes on one element", limits.max_attributes),
                        ));
                    }
                    let attribute = attribute.map_err(|error| {
                        Rejected::one(path(), format!("well-formed attributes near byte {position}: {error}"))
                    })?;
                    let key = attribute.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let name = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
                    let value = attribute.unescape_value().map_err(|error| {
                        Rejected::one(
                            format!("{}/@{name}", path()),
                            format!(
                                "an attribute value with only the five XML entities and character references: {error}"
                            ),
                        )
                    })?;
                    attributes.push((name, value.into_owned()));
                }
                let namespace = match namespace {
                    ResolveResult::Bound(Namespace(uri)) => Some(String::from_utf8_lossy(uri).into_owned()),
                    ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
                };
                stack.push(Element { name: local, namespace, attributes, children: Vec::new() });
            }
            (_, Event::End(_)) => {
                let Some(element) = stack.pop() else {
                    return Err(Rejected::one(
                        "/",
                        format!("well-formed XML; unexpected end tag near byte {position}"),
                    ));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            (_, Event::Text(text)) => {
                let text = text.unescape().map_err(|error| {
                    Rejected::one(
                        path_of(&stack),
                        format!("text with only the five XML entities and character references: {error}"),
                    )
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(text.into_owned())),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(Rejected::one(
                            "/",
                            "an XML document (markup starting with '<'); found text outside any element",
                        ))
                    }
                }
            }
            (_, Event::CData(data)) => {
                let data = String::from_utf8_lossy(&data.into_inner()).into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(data)),
                    None => return Err(Rejected::one("/", "no CDATA outside the root element")),
                }
            }
            (_, Event::DocType(_)) => {
                return Err(Rejected::one(
                    path_of(&stack),
                    "no DOCTYPE: DTDs and entity declarations are refused (CDA documents never need them)",
                ))
            }
            (_, Event::Empty(_)) => {
                // Unreachable with `expand_empty_elements`, which turns every `<x/>` into a
                // start and an end event; refuse rather than mis-read if that ever changes.
                return Err(Rejected::one(path_of(&stack), "well-formed XML (internal: unexpanded empty element)"));
            }
            (_, Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => {}
            (_, Event::Eof) => break,
        }
    }
    if !stack.is_empty() {
        let open = stack.last().map(|element| element.name.clone()).unwrap_or_default();
        return Err(Rejected::one(
            path_of(&stack),
            format!("a complete document; the input ended before </{open}> (truncated?)"),
        ));
    }
    root.ok_or_else(|| Rejected::one("/", "an XML document with a root element; found none"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_problem(bytes: &[u8]) -> String {
        match parse(bytes, &Limits::default()) {
            Ok(_) => "accepted".to_owned(),
            Err(rejected) => rejected.problems[0].to_string(),
        }
    }

    #[test]
    fn declared_encodings_are_found() {
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\" encoding=\"GB2312\"?><a/>"), Some("gb2312".into()));
        assert_eq!(declared_encoding(b"<?xml version='1.0' encoding = 'utf-8' ?>"), Some("utf-8".into()));
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a/>"), None);
    }

    #[test]
    fn tree_keeps_names_namespaces_attributes_and_text() {
        let xml =
            br#"<r xmlns="urn:hl7-org:v3" xmlns:x="urn:other" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <a xsi:type="cda:PQ" value="1 &amp; 2">t&#x4E2D;<![CDATA[<c>]]></a><x:a/></r>"#;
        let root = parse(xml, &Limits::default()).unwrap();
        assert!(root.is_hl7());
        assert_eq!(root.children_named("a").count(), 1);
        let a = root.child("a").unwrap();
        assert_eq!(a.attr("type"), Some("cda:PQ"));
        assert_eq!(a.attr("value"), Some("1 & 2"));
        assert_eq!(a.text(), "t中<c>");
        assert_eq!(root.elements().count(), 2);
    }

    #[test]
    fn structural_problems_name_the_path() {
        assert!(first_problem(b"<a><b></a>").starts_with("/a/b: well-formed XML"));
        assert!(first_problem(b"<a><b>").contains("truncated"));
        assert!(first_problem(b"<a/><b/>").contains("single root"));
        assert!(first_problem(b"hello").contains("outside any element"));
        assert!(first_problem(b"").contains("found none"));
        assert!(first_problem(b"<a>&nbsp;</a>").starts_with("/a: text with only"));
        assert!(first_problem(b"<a b=\"&x;\"/>").starts_with("/a/@b"));
        assert!(first_problem(b"\xFF\xFEa").contains("UTF-16"));
        assert!(first_problem(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>").contains("'ebcdic'"));
    }
}
