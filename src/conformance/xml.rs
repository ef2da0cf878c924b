//! Reader for the OASIS KMIP XML test cases (`vectors/{1.4,2.1}/{mandatory,optional}/*.xml`).
//!
//! Owns three things: the file quirks (stray `#` lines, an `<?xml?>` prolog, a doubled
//! `</KMIP>`, see `vectors/FORMAT.md`), the XML element encoding of KMIP Additional Message
//! Encodings v1.0 §6.1 (element or generic `<TTLV>` form → [`Ttlv`]) and the `$` placeholders,
//! which it hands to a caller-supplied [`Resolver`] so that a live harness can bind and
//! substitute them. It knows nothing of servers or of what a response should contain.
//!
//! Every failure is a `String` naming the file, the exchange and the XML path; nothing panics
//! on odd input.

use crate::kmip::enums::{ENUM_OLD_TOKENS, ENUM_TABLE, TAG_ENUMERATIONS};
use crate::ttlv::{ItemType, Tag, Ttlv, Value, TAG_TABLE};
use std::fs;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The test-case folders under the vectors directory, in the order they are read.
pub const SUITES: [&str; 4] = [
    "1.4/mandatory",
    "1.4/optional",
    "2.1/mandatory",
    "2.1/optional",
];

/// Deepest element nesting accepted; the vectors nest about 8 deep, and the cap keeps the
/// recursive tree walks bounded on hostile input. Matches the TTLV decoder's default limit.
const MAX_DEPTH: usize = 64;

/// PKCS#11 function tokens: KMIP 2.1 §11.38 numbers them by their 1-based position in
/// PKCS#11's `CK_FUNCTION_LIST_3_0`, so they are in no KMIP table. Only those the vectors use.
const PKCS11_FUNCTIONS: &[(&str, u32)] =
    &[("C_Initialize", 1), ("C_Finalize", 2), ("C_GetInfo", 3)];

/// PKCS#11 return-code tokens: KMIP 2.1 §11.39 uses PKCS#11's `CK_RV` values (`CKR_OK` = 0).
const PKCS11_RETURN_CODES: &[(&str, u32)] = &[("OK", 0)];

/// Every `*.xml` file of the [`SUITES`] under `dir`, sorted within each suite. A missing suite
/// folder is an error: a partial vectors directory must not pass as a complete one.
pub fn vector_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for suite in SUITES {
        let folder = dir.join(suite);
        let entries = fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("{}: {e}", folder.display()))?
                .path();
            if path.extension().is_some_and(|ext| ext == "xml") {
                found.push(path);
            }
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// One XML element as written: the raw strings, so that a harness can report or compare them
/// before any conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Element name (namespace dropped): a KMIP XML tag name, `TTLV`, or `x` + 6 hex digits.
    pub name: String,
    /// The `tag` attribute of the generic `<TTLV>` form.
    pub tag: Option<String>,
    /// The `type` attribute; absent means Structure.
    pub item_type: Option<String>,
    /// The `value` attribute.
    pub value: Option<String>,
    /// Child elements in order.
    pub children: Vec<Node>,
    /// 1-based line of the element's start in the file.
    pub line: u32,
}

impl Node {
    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// One request and the response the test case expects to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The `<RequestMessage>` element.
    pub request: Node,
    /// The `<ResponseMessage>` element.
    pub response: Node,
    /// The `n` of the last `# TIME n` line above the request, if any (the time step that
    /// `$NOW` means for this exchange).
    pub time: Option<i64>,
}

/// One test-case file: its exchanges in the order they must run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The file's name, used in every error message.
    pub file: String,
    /// Request/response pairs.
    pub exchanges: Vec<Exchange>,
}

/// Which message of an exchange: the request, or the response the test case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The `<RequestMessage>`.
    Request,
    /// The `<ResponseMessage>`.
    Response,
}

impl TestCase {
    /// Reads and parses a test-case file.
    pub fn load(path: &Path) -> Result<TestCase, String> {
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let text = fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
        TestCase::parse(&file, &text)
    }

    /// Parses test-case text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<TestCase, String> {
        let (clean, times) = clean(text);
        let doc = roxmltree::Document::parse(&clean).map_err(|e| format!("{file}: {e}"))?;
        let root = doc.root_element();
        if !matches!(root.tag_name().name(), "KMIP" | "KmipTestCase") {
            let name = root.tag_name().name();
            return Err(format!("{file}: root element is <{name}>, not <KMIP>"));
        }
        let messages = top_level_messages(&doc, root).map_err(|e| format!("{file}: {e}"))?;
        let exchanges = pair_up(messages, &times).map_err(|e| format!("{file}: {e}"))?;
        Ok(TestCase {
            file: file.to_owned(),
            exchanges,
        })
    }

    /// The message of exchange `index` on `side` as TTLV; errors name the file, the exchange
    /// and the XML path.
    pub fn message(
        &self,
        index: usize,
        side: Side,
        resolver: &mut dyn Resolver,
    ) -> Result<Ttlv, String> {
        let where_ = format!("{}: exchange {index} {side:?}", self.file);
        let exchange = self
            .exchanges
            .get(index)
            .ok_or_else(|| format!("{where_}: the file has {} exchanges", self.exchanges.len()))?;
        let node = match side {
            Side::Request => &exchange.request,
            Side::Response => &exchange.response,
        };
        to_ttlv(node, resolver).map_err(|e| format!("{where_}: {e}"))
    }
}

/// Drops `^\s*#` lines (keeping line numbers), blanks an `<?xml?>` prolog that those lines
/// may have pushed off the first byte, and cuts repeated `</KMIP>` closers. Returns the text
/// and the `# TIME n` markers as (line, n).
fn clean(text: &str) -> (String, Vec<(u32, i64)>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut times = Vec::new();
    for (number, line) in text.split_inclusive('\n').enumerate() {
        match line.trim_start().strip_prefix('#') {
            Some(comment) => {
                if let Some(n) = time_marker(comment) {
                    times.push((u32::try_from(number + 1).unwrap_or(u32::MAX), n));
                }
                // An empty line in its place keeps roxmltree's line numbers true to the file.
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    blank_prolog(&mut out);
    cut_repeated_close(&mut out);
    (out, times)
}

/// `n` from the text after `#` of a `# TIME n` line.
fn time_marker(comment: &str) -> Option<i64> {
    comment.trim().strip_prefix("TIME")?.trim().parse().ok()
}

/// XML allows the declaration only at the first byte; once `#` lines above it are blanked it
/// is not there any more, and it carries nothing we need, so it becomes spaces.
fn blank_prolog(text: &mut String) {
    let start = text.len() - text.trim_start().len();
    if !text[start..].starts_with("<?xml") {
        return;
    }
    let after = text[start + 5..].chars().next();
    if !after.is_some_and(|c| c.is_whitespace() || c == '?') {
        return; // some other processing instruction, e.g. <?xml-stylesheet?>
    }
    if let Some(len) = text[start..].find("?>") {
        let blanked: String = text[start..start + len + 2]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        text.replace_range(start..start + len + 2, &blanked);
    }
}

/// An upstream file ends with `</KMIP>` twice; drop every extra closer.
fn cut_repeated_close(text: &mut String) {
    const CLOSE: &str = "</KMIP>";
    loop {
        let trimmed = text.trim_end();
        let Some(before) = trimmed.strip_suffix(CLOSE) else {
            return;
        };
        if !before.trim_end().ends_with(CLOSE) {
            return;
        }
        let keep = before.len();
        text.truncate(keep);
    }
}

/// The message elements directly under the root; any other text there is an error.
fn top_level_messages(
    doc: &roxmltree::Document,
    root: roxmltree::Node,
) -> Result<Vec<Node>, String> {
    let mut messages = Vec::new();
    for child in root.children() {
        if child.is_element() {
            messages.push(build_node(doc, child, 1)?);
        } else if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
            let line = line_of(doc, child);
            return Err(format!("line {line}: stray text under <KMIP>"));
        }
    }
    if messages.is_empty() {
        return Err("no messages".to_owned());
    }
    Ok(messages)
}

/// Pairs messages as RequestMessage/ResponseMessage, in strict alternation.
fn pair_up(messages: Vec<Node>, times: &[(u32, i64)]) -> Result<Vec<Exchange>, String> {
    let mut exchanges = Vec::with_capacity(messages.len() / 2);
    let mut iter = messages.into_iter();
    while let Some(request) = iter.next() {
        let index = exchanges.len();
        if request.name != "RequestMessage" {
            let (name, line) = (&request.name, request.line);
            return Err(format!(
                "exchange {index}: expected <RequestMessage>, found <{name}> at line {line}"
            ));
        }
        let Some(response) = iter.next() else {
            let line = request.line;
            return Err(format!(
                "exchange {index}: the request at line {line} has no response"
            ));
        };
        if response.name != "ResponseMessage" {
            let (name, line) = (&response.name, response.line);
            return Err(format!(
                "exchange {index}: expected <ResponseMessage>, found <{name}> at line {line}"
            ));
        }
        let time = times
            .iter()
            .rev()
            .find(|(line, _)| *line < request.line)
            .map(|(_, n)| *n);
        exchanges.push(Exchange {
            request,
            response,
            time,
        });
    }
    Ok(exchanges)
}

fn line_of(doc: &roxmltree::Document, node: roxmltree::Node) -> u32 {
    doc.text_pos_at(node.range().start).row
}

/// Copies an element into an owned [`Node`]. Only `type`, `value`, `tag` and the generic
/// form's informative `name` are allowed, so that a misspelt attribute cannot vanish.
fn build_node(
    doc: &roxmltree::Document,
    element: roxmltree::Node,
    depth: usize,
) -> Result<Node, String> {
    let line = line_of(doc, element);
    let name = element.tag_name().name().to_owned();
    if depth > MAX_DEPTH {
        return Err(format!(
            "line {line}: elements nested deeper than {MAX_DEPTH}"
        ));
    }
    let mut node = Node {
        name,
        tag: None,
        item_type: None,
        value: None,
        children: Vec::new(),
        line,
    };
    for attr in element.attributes() {
        let value = Some(attr.value().to_owned());
        match attr.name() {
            "type" => node.item_type = value,
            "value" => node.value = value,
            "tag" => node.tag = value,
            "name" if node.name == "TTLV" => {}
            other => {
                let element = &node.name;
                return Err(format!(
                    "line {line}: <{element}> has unknown attribute {other}"
                ));
            }
        }
    }
    for child in element.children() {
        if child.is_element() {
            node.children.push(build_node(doc, child, depth + 1)?);
        } else if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
            let (element, line) = (&node.name, line_of(doc, child));
            return Err(format!("line {line}: text inside <{element}>"));
        }
    }
    Ok(node)
}

/// A `$NAME` or `$NAME±seconds` token found where a value was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placeholder<'a> {
    /// The token as written, e.g. `$NOW-3600`.
    pub token: &'a str,
    /// The name without `$` and offset, e.g. `NOW`, `UNIQUE_IDENTIFIER_0`.
    pub name: &'a str,
    /// The signed offset in seconds (`$NOW-3600` → -3600), 0 if none.
    pub offset: i64,
    /// XML path of the element, e.g. `ResponseMessage/BatchItem/ResponsePayload/UniqueIdentifier`,
    /// so that a harness can bind a response placeholder to the same place in the actual reply.
    pub path: &'a str,
}

/// Supplies values for placeholders. A live harness binds response placeholders and
/// substitutes them in later requests; [`FixedResolver`] gives fixed values for offline tests.
pub trait Resolver {
    /// The value to put where the XML says `placeholder`; it must be of `item_type`.
    fn resolve(
        &mut self,
        placeholder: &Placeholder<'_>,
        item_type: ItemType,
    ) -> Result<Value, String>;
}

/// Any closure `|p: &Placeholder<'_>, t: ItemType| -> Result<Value, String>` is a resolver
/// (annotate the parameter types so that the closure is general over the lifetime).
impl<F> Resolver for F
where
    F: FnMut(&Placeholder<'_>, ItemType) -> Result<Value, String>,
{
    fn resolve(
        &mut self,
        placeholder: &Placeholder<'_>,
        item_type: ItemType,
    ) -> Result<Value, String> {
        self(placeholder, item_type)
    }
}

/// Deterministic placeholder values for offline round trips: `$NOW±n` is `now ± n`, text and
/// byte strings are the token itself, other types a value derived from the token. The same
/// token always gives the same value.
#[derive(Clone, Copy, Debug)]
pub struct FixedResolver {
    /// What `$NOW` means, in seconds since the epoch.
    pub now: i64,
}

impl Default for FixedResolver {
    fn default() -> Self {
        // 2020-09-13T12:26:40Z: any fixed instant will do, this one is easy to spot.
        FixedResolver { now: 1_600_000_000 }
    }
}

impl Resolver for FixedResolver {
    fn resolve(
        &mut self,
        placeholder: &Placeholder<'_>,
        item_type: ItemType,
    ) -> Result<Value, String> {
        let token = placeholder.token;
        let time = || {
            self.now
                .checked_add(placeholder.offset)
                .ok_or_else(|| format!("{token} is out of range"))
        };
        let hash = fnv1a(token.as_bytes());
        let bytes = |b: Vec<u8>| Zeroizing::new(b);
        Ok(match item_type {
            ItemType::DateTime => Value::DateTime(time()?),
            ItemType::DateTimeExtended => Value::DateTimeExtended(
                time()?
                    .checked_mul(1_000_000)
                    .ok_or_else(|| format!("{token} is out of range"))?,
            ),
            ItemType::TextString => Value::TextString(token.to_owned()),
            ItemType::ByteString => Value::ByteString(bytes(token.as_bytes().to_vec())),
            ItemType::BigInteger => Value::BigInteger(bytes(hash.to_be_bytes().to_vec())),
            // Truncating the hash is the point: any fixed value of the right width will do.
            ItemType::Integer => Value::Integer(hash as i32),
            ItemType::LongInteger => Value::LongInteger(hash as i64),
            ItemType::Enumeration => Value::Enumeration(hash as u32),
            ItemType::Interval => Value::Interval(hash as u32),
            ItemType::Boolean => Value::Boolean(hash & 1 == 1),
            ItemType::Structure => return Err(format!("{token} cannot stand for a Structure")),
        })
    }
}

/// FNV-1a, a fixed hash (std's `DefaultHasher` may change between releases).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Converts a node (usually a whole `<RequestMessage>` or `<ResponseMessage>`) to TTLV.
/// Errors give the XML path and line of the offending element.
pub fn to_ttlv(node: &Node, resolver: &mut dyn Resolver) -> Result<Ttlv, String> {
    let mut converter = Converter {
        resolver,
        path: node.name.clone(),
    };
    converter.convert(node, None)
}

/// Walks a node tree, keeping the XML path of the element being converted.
struct Converter<'r> {
    resolver: &'r mut dyn Resolver,
    path: String,
}

impl Converter<'_> {
    /// `attribute_name` is the text of a sibling `AttributeName`, which decides how a 1.x
    /// `AttributeValue` enumeration or mask is read.
    fn convert(&mut self, node: &Node, attribute_name: Option<&str>) -> Result<Ttlv, String> {
        let tag = element_tag(node).map_err(|why| self.error(node, &why))?;
        let item_type = match node.item_type.as_deref() {
            None => ItemType::Structure,
            Some(name) => item_type_named(name)
                .ok_or_else(|| self.error(node, &format!("unknown type {name:?}")))?,
        };
        if item_type == ItemType::Structure {
            if node.value.is_some() {
                return Err(self.error(node, "a Structure has no value attribute"));
            }
            return Ok(Ttlv::structure(tag, self.children(node)?));
        }
        if !node.children.is_empty() {
            return Err(self.error(node, &format!("a {item_type:?} has no child elements")));
        }
        let Some(text) = node.value.as_deref() else {
            return Err(self.error(node, "missing value attribute"));
        };
        let value = match parse_placeholder(text, &self.path) {
            Some(placeholder) => {
                let resolved = self.resolver.resolve(&placeholder, item_type);
                check_resolved(resolved, &placeholder, item_type)
            }
            None => parse_value(tag, item_type, text, attribute_name),
        };
        value
            .map(|value| Ttlv::new(tag, value))
            .map_err(|why| self.error(node, &why))
    }

    /// Converts the children, extending the path with `Name[k]` (1-based, as in XPath) where
    /// several siblings share a name.
    fn children(&mut self, node: &Node) -> Result<Vec<Ttlv>, String> {
        let attribute_name = node.child("AttributeName").and_then(|n| n.value.as_deref());
        let mut out = Vec::with_capacity(node.children.len());
        for (i, child) in node.children.iter().enumerate() {
            let same = |c: &&Node| c.name == child.name;
            let parent_len = self.path.len();
            self.path.push('/');
            self.path.push_str(&child.name);
            if node.children.iter().filter(same).count() > 1 {
                let k = node.children[..i].iter().filter(same).count() + 1;
                self.path.push_str(&format!("[{k}]"));
            }
            let result = self.convert(child, attribute_name);
            self.path.truncate(parent_len);
            out.push(result?);
        }
        Ok(out)
    }

    fn error(&self, node: &Node, why: &str) -> String {
        format!("{} (line {}): {why}", self.path, node.line)
    }
}

/// A resolver's answer must have the type the XML declares, or the message would change shape.
fn check_resolved(
    resolved: Result<Value, String>,
    placeholder: &Placeholder<'_>,
    item_type: ItemType,
) -> Result<Value, String> {
    let value = resolved?;
    let got = value.item_type();
    if got != item_type {
        let token = placeholder.token;
        return Err(format!(
            "resolver gave a {got:?} for {token} in a {item_type:?}"
        ));
    }
    Ok(value)
}

/// `$NAME` or `$NAME+n` / `$NAME-n` with NAME in upper case, digits and `_`; anything else
/// (including a literal `$` in text) is not a placeholder.
fn parse_placeholder<'a>(text: &'a str, path: &'a str) -> Option<Placeholder<'a>> {
    let body = text.strip_prefix('$')?;
    let (name, offset) = match body.find(['+', '-']) {
        Some(at) => (&body[..at], body[at..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    well_formed.then_some(Placeholder {
        token: text,
        name,
        offset,
        path,
    })
}

/// The tag of an element: the generic form's `tag` attribute, an `x540001`-style hex name
/// (§6.1.5 uses one for an extension) or a KMIP XML element name.
fn element_tag(node: &Node) -> Result<Tag, String> {
    match (node.name.as_str(), node.tag.as_deref()) {
        ("TTLV", Some(tag)) => parse_tag(tag),
        ("TTLV", None) => Err("a generic <TTLV> element needs a tag attribute".to_owned()),
        (name, None) => parse_tag(name),
        (_, Some(_)) => Err("only a generic <TTLV> element takes a tag attribute".to_owned()),
    }
}

fn parse_tag(text: &str) -> Result<Tag, String> {
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix('x'));
    if let Some(value) = hex.filter(|h| h.len() == 6).and_then(hex_u32) {
        return Ok(Tag(value));
    }
    TAG_TABLE
        .iter()
        .find(|(_, _, xml)| *xml == text)
        .map(|(value, _, _)| Tag(*value))
        .ok_or_else(|| format!("unknown tag {text:?}"))
}

/// The TTLV type for a `type` attribute (§6.1.4; DateTimeExtended is the 2.x addition).
fn item_type_named(name: &str) -> Option<ItemType> {
    Some(match name {
        "Structure" => ItemType::Structure,
        "Integer" => ItemType::Integer,
        "LongInteger" => ItemType::LongInteger,
        "BigInteger" => ItemType::BigInteger,
        "Enumeration" => ItemType::Enumeration,
        "Boolean" => ItemType::Boolean,
        "TextString" => ItemType::TextString,
        "ByteString" => ItemType::ByteString,
        "DateTime" => ItemType::DateTime,
        "Interval" => ItemType::Interval,
        "DateTimeExtended" => ItemType::DateTimeExtended,
        _ => return None,
    })
}

/// Parses a non-structure `value` attribute (§6.1.6). Non-text values are xsd types, whose
/// surrounding white space does not count.
fn parse_value(
    tag: Tag,
    item_type: ItemType,
    text: &str,
    attribute_name: Option<&str>,
) -> Result<Value, String> {
    let bytes = |what: &str| {
        hex::decode(text.trim())
            .map(Zeroizing::new)
            .map_err(|e| format!("{what} {text:?} is not hex: {e}"))
    };
    let trimmed = text.trim();
    Ok(match item_type {
        ItemType::Integer => Value::Integer(parse_integer(trimmed, tag, attribute_name)?),
        ItemType::LongInteger => Value::LongInteger(
            trimmed
                .parse()
                .ok()
                .or_else(|| hex_u64(trimmed).map(|v| v as i64))
                .ok_or_else(|| format!("{text:?} is not a LongInteger"))?,
        ),
        ItemType::BigInteger => {
            let value = bytes("BigInteger")?;
            // TTLV Big Integers are whole 8-byte words; §6.1.1 requires the XML to include the
            // sign extension, so a short value is an error rather than a guess.
            if value.is_empty() || value.len() % 8 != 0 {
                let n = value.len();
                return Err(format!("BigInteger of {n} bytes is not a multiple of 8"));
            }
            Value::BigInteger(value)
        }
        ItemType::Enumeration => {
            Value::Enumeration(parse_enumeration(trimmed, tag, attribute_name)?)
        }
        ItemType::Boolean => Value::Boolean(match trimmed {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("{text:?} is not a Boolean")),
        }),
        ItemType::TextString => Value::TextString(text.to_owned()),
        ItemType::ByteString => Value::ByteString(bytes("ByteString")?),
        ItemType::DateTime => match parse_datetime(trimmed)? {
            (seconds, 0) => Value::DateTime(seconds),
            _ => return Err(format!("DateTime {text:?} has fractional seconds")),
        },
        ItemType::DateTimeExtended => {
            let (seconds, micros) = parse_datetime(trimmed)?;
            let value = seconds
                .checked_mul(1_000_000)
                .and_then(|v| v.checked_add(i64::from(micros)))
                .ok_or_else(|| format!("{text:?} is out of range"))?;
            Value::DateTimeExtended(value)
        }
        ItemType::Interval => Value::Interval(
            trimmed
                .parse()
                .ok()
                .or_else(|| hex_u32(trimmed.strip_prefix("0x")?))
                .ok_or_else(|| format!("{text:?} is not an Interval"))?,
        ),
        ItemType::Structure => return Err("a Structure has no value".to_owned()),
    })
}

/// A decimal xsd:int, else a mask: space-separated value names of the tag's mask and/or
/// `0x` words, OR'ed (§6.1.6.4).
fn parse_integer(text: &str, tag: Tag, attribute_name: Option<&str>) -> Result<i32, String> {
    if let Ok(value) = text.parse::<i32>() {
        return Ok(value);
    }
    if text.is_empty() {
        return Err("empty Integer".to_owned());
    }
    let vocabulary = vocabulary(tag, attribute_name);
    let mut mask = 0u32;
    for word in text.split_whitespace() {
        mask |= word
            .strip_prefix("0x")
            .and_then(hex_u32)
            .or_else(|| vocabulary.lookup(word))
            .ok_or_else(|| {
                format!("{word:?} in {text:?} is neither an integer nor a {vocabulary}")
            })?;
    }
    // A mask is a set of bits; the wire Integer is signed, so keep the bit pattern.
    Ok(mask as i32)
}

/// `0x` + hex, or a value name of the tag's enumeration (§6.1.6.7).
fn parse_enumeration(text: &str, tag: Tag, attribute_name: Option<&str>) -> Result<u32, String> {
    if let Some(value) = text.strip_prefix("0x").and_then(hex_u32) {
        return Ok(value);
    }
    let vocabulary = vocabulary(tag, attribute_name);
    vocabulary
        .lookup(text)
        .ok_or_else(|| format!("{text:?} is not a {vocabulary}"))
}

/// Where the names of an Enumeration or mask Integer come from.
#[derive(Clone, Copy, Debug)]
enum Vocabulary {
    /// A KMIP enumeration or mask, by its spec name.
    Named(&'static str),
    /// Tag names (2.x Attribute Reference, the "Tag" enumeration).
    Tags,
    /// PKCS#11 values that KMIP only refers to.
    Pkcs11(&'static [(&'static str, u32)]),
    /// No names known (custom attribute, extension tag): hex only.
    HexOnly,
}

impl std::fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Vocabulary::Named(name) => write!(f, "{name} value"),
            Vocabulary::Tags => write!(f, "tag name"),
            Vocabulary::Pkcs11(_) => write!(f, "known PKCS#11 value"),
            Vocabulary::HexOnly => write!(f, "0x value (no names are known here)"),
        }
    }
}

impl Vocabulary {
    fn lookup(self, token: &str) -> Option<u32> {
        match self {
            Vocabulary::Named(enumeration) => ENUM_TABLE
                .iter()
                .find(|(e, _, t, _)| *e == enumeration && *t == token)
                .map(|(_, _, _, value)| *value)
                .or_else(|| {
                    // 1.x tokens that a later version renamed (e.g. MGF1).
                    ENUM_OLD_TOKENS
                        .iter()
                        .find(|(e, t, _)| *e == enumeration && *t == token)
                        .map(|(_, _, value)| *value)
                }),
            Vocabulary::Tags => TAG_TABLE
                .iter()
                .find(|(_, _, xml)| *xml == token)
                .map(|(value, _, _)| *value),
            Vocabulary::Pkcs11(table) => table.iter().find(|(t, _)| *t == token).map(|(_, v)| *v),
            Vocabulary::HexOnly => None,
        }
    }
}

/// The vocabulary of `tag`. A 1.x `AttributeValue` takes that of the attribute its sibling
/// `AttributeName` names ("Cryptographic Algorithm", "State", "Cryptographic Usage Mask"...);
/// other tags use the enumeration of their own spec name unless the generated
/// `TAG_ENUMERATIONS` says otherwise.
fn vocabulary(tag: Tag, attribute_name: Option<&str>) -> Vocabulary {
    if tag == Tag::ATTRIBUTE_VALUE {
        return match attribute_name.and_then(Tag::from_name) {
            Some(attribute) if attribute != Tag::ATTRIBUTE_VALUE => vocabulary(attribute, None),
            _ => Vocabulary::HexOnly,
        };
    }
    if tag == Tag::ATTRIBUTE_REFERENCE {
        return Vocabulary::Tags;
    }
    if tag == Tag::PKCS_11_FUNCTION {
        return Vocabulary::Pkcs11(PKCS11_FUNCTIONS);
    }
    if tag == Tag::PKCS_11_RETURN_CODE {
        return Vocabulary::Pkcs11(PKCS11_RETURN_CODES);
    }
    if let Some((_, _, enumeration)) = TAG_ENUMERATIONS.iter().find(|(t, _, _)| *t == tag.0) {
        return Vocabulary::Named(enumeration);
    }
    tag.name().map_or(Vocabulary::HexOnly, Vocabulary::Named)
}

/// 1 to 8 hex digits (after any `0x`), either case. `from_str_radix` alone would also take a
/// sign.
fn hex_u32(digits: &str) -> Option<u32> {
    let ok = (1..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u32::from_str_radix(digits, 16).ok()).flatten()
}

/// `0x` + 1 to 16 hex digits, as the bit pattern of a 64-bit value.
fn hex_u64(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    let ok = (1..=16).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(digits, 16).ok()).flatten()
}

/// An xsd:dateTime `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]` as (seconds since the epoch,
/// microseconds). No zone means UTC, which is what KMIP date-times are.
fn parse_datetime(text: &str) -> Result<(i64, u32), String> {
    let bad = |why: &str| format!("{text:?} is not an xsd:dateTime ({why})");
    let (date, rest) = text.split_once('T').ok_or_else(|| bad("no T"))?;
    let year = number(date.get(0..4)).ok_or_else(|| bad("year"))?;
    let month = number(date.get(5..7)).filter(|m| (1..=12).contains(m));
    let month = month.ok_or_else(|| bad("month"))?;
    let day = number(date.get(8..10)).filter(|d| (1..=days_in_month(year, month)).contains(d));
    let day = day.ok_or_else(|| bad("day"))?;
    if date.len() != 10 || date.get(4..5) != Some("-") || date.get(7..8) != Some("-") {
        return Err(bad("date layout"));
    }
    let hour = number(rest.get(0..2))
        .filter(|h| *h < 24)
        .ok_or_else(|| bad("hour"))?;
    let minute = number(rest.get(3..5))
        .filter(|m| *m < 60)
        .ok_or_else(|| bad("minute"))?;
    let second = number(rest.get(6..8))
        .filter(|s| *s < 60)
        .ok_or_else(|| bad("second"))?;
    if rest.get(2..3) != Some(":") || rest.get(5..6) != Some(":") {
        return Err(bad("time layout"));
    }
    let (micros, zone) = fraction(rest.get(8..).unwrap_or("")).ok_or_else(|| bad("fraction"))?;
    let offset = zone_offset(zone).ok_or_else(|| bad("zone"))?;
    let days = crate::clock::days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Ok((seconds, micros))
}

/// Exactly the digits of `field` as a number.
fn number(field: Option<&str>) -> Option<u32> {
    let field = field?;
    field
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| field.parse().ok())
        .flatten()
}

/// Splits an optional `.digits` off the front: (microseconds, rest). Digits beyond the
/// sixth must be zero, since TTLV has nothing finer than a microsecond.
fn fraction(text: &str) -> Option<(u32, &str)> {
    let Some(after) = text.strip_prefix('.') else {
        return Some((0, text));
    };
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let (digits, rest) = after.split_at(end);
    if digits.is_empty() || digits.bytes().skip(6).any(|b| b != b'0') {
        return None;
    }
    let micros = digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'));
    Some((micros, rest))
}

/// Seconds east of UTC for `Z`, `±hh:mm` or nothing.
fn zone_offset(zone: &str) -> Option<i64> {
    let sign = match zone.as_bytes().first() {
        None => return Some(0),
        Some(b'Z') if zone.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    if zone.len() != 6 || zone.get(3..4) != Some(":") {
        return None;
    }
    let hours = number(zone.get(1..3)).filter(|h| *h <= 14)?;
    let minutes = number(zone.get(4..6)).filter(|m| *m < 60)?;
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
