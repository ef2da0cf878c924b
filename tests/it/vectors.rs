//! Round trip of every OASIS KMIP XML test-case message through akm's TTLV codec: XML → Ttlv
//! → encode → decode → encode must give the same bytes and the same tree. Also owns the unit
//! tests of the XML reader's trickier conversions (`support/xml.rs`).

use crate::support::xml::{self, FixedResolver, Placeholder, Side, TestCase};
use akm::kmip::enums::{
    cryptographic_algorithm, cryptographic_usage_mask as usage, hashing_algorithm, mask_generator,
    object_type, protection_storage_mask, state,
};
use akm::ttlv::{decode, ItemType, Limits, Tag, Ttlv, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Every message of every file in 1.4 and 2.1 (mandatory and optional). The MSGENC-* files
/// are included: they describe other transports, but their messages are ordinary KMIP
/// messages that TTLV expresses.
#[test]
fn every_vector_message_round_trips_through_ttlv() {
    let Some(dir) = xml::vectors_dir() else {
        println!(
            "skipped: OASIS KMIP XML vectors not found at $AKM_KMIP_VECTORS or \
             ../shared/kmip/vectors (set AKM_KMIP_VECTORS)"
        );
        return;
    };
    let files = xml::vector_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty(), "no test cases under {}", dir.display());
    // suite ("2.1/mandatory") -> (files, messages)
    let mut per_suite: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in &files {
        let counts = per_suite.entry(suite_of(path)).or_default();
        counts.0 += 1;
        match round_trip_file(path) {
            Ok(messages) => counts.1 += messages,
            Err(e) => failures.push(e),
        }
    }
    let messages: usize = per_suite.values().map(|(_, m)| m).sum();
    for (suite, (f, m)) in &per_suite {
        println!("KMIP XML vectors {suite}: {f} files, {m} messages");
    }
    println!(
        "KMIP XML vectors: {} files, {messages} messages round-tripped, {} files failed",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// "1.4/mandatory" for `.../1.4/mandatory/X.xml`.
fn suite_of(path: &Path) -> String {
    let mut parents = path.ancestors().skip(1).filter_map(|p| p.file_name());
    let group = parents
        .next()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let version = parents
        .next()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!("{version}/{group}")
}

/// Round-trips every message of one file; returns how many.
fn round_trip_file(path: &Path) -> Result<usize, String> {
    let case = TestCase::load(path)?;
    let mut resolver = FixedResolver::default();
    let mut count = 0;
    for index in 0..case.exchanges.len() {
        for side in [Side::Request, Side::Response] {
            let message = case.message(index, side, &mut resolver)?;
            round_trip(&message)
                .map_err(|e| format!("{}: exchange {index} {side:?}: {e}", case.file))?;
            count += 1;
        }
    }
    Ok(count)
}

fn round_trip(message: &Ttlv) -> Result<(), String> {
    let bytes = message.encode();
    let decoded = decode(&bytes, &Limits::default()).map_err(|e| format!("decode: {e}"))?;
    if decoded != *message {
        return Err(format!(
            "decoded tree differs:\n{decoded:#?}\nvs\n{message:#?}"
        ));
    }
    if decoded.encode() != bytes {
        return Err("re-encoding the decoded tree changed the bytes".to_owned());
    }
    Ok(())
}

// ---- unit tests of the reader ----

/// Wraps request-payload XML in a one-exchange file and returns the converted payload items.
fn payload(items: &str) -> Result<Vec<Ttlv>, String> {
    payload_with(items, &mut FixedResolver::default())
}

fn payload_with(items: &str, resolver: &mut dyn xml::Resolver) -> Result<Vec<Ttlv>, String> {
    let text = format!(
        "<KMIP><RequestMessage><BatchItem><RequestPayload>\n{items}\n\
         </RequestPayload></BatchItem></RequestMessage><ResponseMessage/></KMIP>"
    );
    let case = TestCase::parse("unit.xml", &text)?;
    let message = case.message(0, Side::Request, resolver)?;
    let batch_item = message.child(Tag::BATCH_ITEM).ok_or("no batch item")?;
    let payload = batch_item.child(Tag::REQUEST_PAYLOAD).ok_or("no payload")?;
    Ok(payload.children().to_vec())
}

fn one(items: &str) -> Ttlv {
    let mut all = payload(items).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn mask_lists_names_and_hex_words_are_ored() {
    let expected = usage::ENCRYPT | usage::DECRYPT | usage::CERTIFICATE_SIGN;
    for value in [
        "Encrypt Decrypt CertificateSign",
        "CertificateSign Decrypt Encrypt",
        "0x0000100c",
        "CertificateSign 0x00000004 0x0000008",
        "  Encrypt\tDecrypt  CertificateSign ",
    ] {
        let item = one(&format!(
            r#"<CryptographicUsageMask type="Integer" value="{value}"/>"#
        ));
        assert_eq!(item.as_int(), Some(expected), "{value:?}");
    }
    let item = one(r#"<ProtectionStorageMask type="Integer" value="Software"/>"#);
    assert_eq!(item.as_int(), Some(protection_storage_mask::SOFTWARE));
    // A set top bit stays a bit pattern, not an overflow.
    let item = one(r#"<CryptographicUsageMask type="Integer" value="0xffffffff"/>"#);
    assert_eq!(item.as_int(), Some(-1));
    // Names from another mask, or on a plain integer, are errors.
    assert!(payload(r#"<CryptographicUsageMask type="Integer" value="Software"/>"#).is_err());
    assert!(payload(r#"<BatchCount type="Integer" value="Encrypt"/>"#).is_err());
    assert!(payload(r#"<CryptographicUsageMask type="Integer" value=""/>"#).is_err());
}

#[test]
fn now_placeholders_take_their_offsets() {
    let items = payload_with(
        r#"<ActivationDate type="DateTime" value="$NOW"/>
           <DeactivationDate type="DateTime" value="$NOW-3600"/>
           <ArchiveDate type="DateTime" value="$NOW+60"/>"#,
        &mut FixedResolver { now: 1_000 },
    )
    .unwrap();
    let times: Vec<_> = items.iter().map(|i| i.as_datetime()).collect();
    assert_eq!(times, [Some(1_000), Some(-2_600), Some(1_060)]);

    // A harness resolver sees the parsed name, offset, type and path.
    let mut seen = Vec::new();
    let mut resolver = |p: &Placeholder<'_>, t: ItemType| -> Result<Value, String> {
        seen.push((p.name.to_owned(), p.offset, t, p.path.to_owned()));
        match t {
            ItemType::DateTime => Ok(Value::DateTime(7 + p.offset)),
            _ => Ok(Value::TextString(format!("bound-{}", p.name))),
        }
    };
    let items = payload_with(
        r#"<UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
           <ActivationDate type="DateTime" value="$NOW-3600"/>"#,
        &mut resolver,
    )
    .unwrap();
    assert_eq!(items[0].as_text(), Some("bound-UNIQUE_IDENTIFIER_0"));
    assert_eq!(items[1].as_datetime(), Some(7 - 3600));
    let path = "RequestMessage/BatchItem/RequestPayload/ActivationDate".to_owned();
    assert_eq!(seen[1], ("NOW".to_owned(), -3600, ItemType::DateTime, path));

    // A resolver answering with the wrong type is caught, not encoded.
    let mut wrong =
        |_: &Placeholder<'_>, _: ItemType| -> Result<Value, String> { Ok(Value::Integer(1)) };
    let err = payload_with(
        r#"<ActivationDate type="DateTime" value="$NOW"/>"#,
        &mut wrong,
    );
    assert!(err.unwrap_err().contains("resolver gave a Integer"));
    // A lone `$` or lower-case name in text is literal text, not a placeholder.
    let item = one(r#"<AttributeName type="TextString" value="$price"/>"#);
    assert_eq!(item.as_text(), Some("$price"));
}

#[test]
fn attribute_value_in_1x_is_typed_by_its_attribute_name() {
    let attribute = |name: &str, ty: &str, value: &str| {
        one(&format!(
            r#"<Attribute>
                 <AttributeName type="TextString" value="{name}"/>
                 <AttributeValue type="{ty}" value="{value}"/>
               </Attribute>"#
        ))
        .child(Tag::ATTRIBUTE_VALUE)
        .cloned()
        .unwrap()
    };
    let alg = attribute("Cryptographic Algorithm", "Enumeration", "AES");
    assert_eq!(alg.as_enum(), Some(cryptographic_algorithm::AES));
    let st = attribute("State", "Enumeration", "PreActive");
    assert_eq!(st.as_enum(), Some(state::PRE_ACTIVE));
    let ot = attribute("Object Type", "Enumeration", "SymmetricKey");
    assert_eq!(ot.as_enum(), Some(object_type::SYMMETRIC_KEY));
    let mask = attribute("Cryptographic Usage Mask", "Integer", "Decrypt Encrypt");
    assert_eq!(mask.as_int(), Some(usage::ENCRYPT | usage::DECRYPT));
    // A custom attribute has no names: hex only.
    let custom = attribute("x-Custom", "Enumeration", "0x80000001");
    assert_eq!(custom.as_enum(), Some(0x8000_0001));
    let err = payload(
        r#"<Attribute><AttributeName type="TextString" value="x-Custom"/>
           <AttributeValue type="Enumeration" value="AES"/></Attribute>"#,
    )
    .unwrap_err();
    assert!(err.contains("Attribute/AttributeValue"), "{err}");
}

#[test]
fn enumeration_aliases_and_tag_names() {
    let item = one(r#"<MaskGenerator type="Enumeration" value="MGF1"/>"#);
    assert_eq!(item.as_enum(), Some(mask_generator::MFG1));
    let item = one(r#"<MaskGeneratorHashingAlgorithm type="Enumeration" value="SHA_256"/>"#);
    assert_eq!(item.as_enum(), Some(hashing_algorithm::SHA_256));
    let item = one(r#"<AttributeReference type="Enumeration" value="CryptographicAlgorithm"/>"#);
    assert_eq!(item.as_enum(), Some(Tag::CRYPTOGRAPHIC_ALGORITHM.0));
    let item = one(r#"<PKCS_11Function type="Enumeration" value="C_Initialize"/>"#);
    assert_eq!(item.as_enum(), Some(1));
    let item = one(r#"<OpaqueDataType type="Enumeration" value="0x80000001"/>"#);
    assert_eq!(item.as_enum(), Some(0x8000_0001));
    assert!(payload(r#"<ObjectType type="Enumeration" value="Bogus"/>"#).is_err());
}

#[test]
fn generic_ttlv_and_hex_named_elements() {
    let item = one(r#"<TTLV tag="0x540001" type="TextString" value="na"/>"#);
    assert_eq!(item, Ttlv::text(Tag(0x54_0001), "na"));
    let item = one(r#"<x540002 type="LongInteger" value="-2"/>"#);
    assert_eq!(item, Ttlv::long(Tag(0x54_0002), -2));
    // Known tags by hex resolve their enumeration names too; DateTime offsets are applied.
    let items = payload(
        r#"<TTLV tag="0x420057" name="ObjectType" type="Enumeration" value="SymmetricKey"/>
           <TTLV tag="0x420001" type="DateTime" value="2001-01-01T10:00:00+10:00"/>
           <TTLV tag="0x540003"><TTLV tag="0x540004" type="Boolean" value="true"/></TTLV>"#,
    )
    .unwrap();
    assert_eq!(
        items[0],
        Ttlv::enumeration(Tag::OBJECT_TYPE, object_type::SYMMETRIC_KEY)
    );
    assert_eq!(items[1], Ttlv::datetime(Tag::ACTIVATION_DATE, 978_307_200));
    let inner = Ttlv::boolean(Tag(0x54_0004), true);
    assert_eq!(items[2], Ttlv::structure(Tag(0x54_0003), vec![inner]));
    assert!(payload(r#"<TTLV type="Integer" value="1"/>"#).is_err());
    assert!(payload(r#"<NoSuchTag type="Integer" value="1"/>"#).is_err());
}

#[test]
fn scalar_types_parse_and_round_trip() {
    let items = payload(
        r#"<PublicExponent type="BigInteger" value="0000000000010001"/>
           <KeyMaterial type="ByteString" value="00Ab"/>
           <LeaseTime type="Interval" value="3600"/>
           <UsageLimitsCount type="LongInteger" value="1152921504606846976"/>
           <Sensitive type="Boolean" value="false"/>
           <LastChangeDate type="DateTimeExtended" value="1970-01-01T00:00:01.5Z"/>
           <InitialDate type="DateTime" value="2020-02-29T23:59:59-01:30"/>"#,
    )
    .unwrap();
    assert_eq!(
        items[0].value,
        Value::BigInteger(vec![0, 0, 0, 0, 0, 1, 0, 1].into())
    );
    assert_eq!(items[1].as_bytes(), Some(&[0x00, 0xab][..]));
    assert_eq!(items[2].value, Value::Interval(3600));
    assert_eq!(items[3].as_long(), Some(1 << 60));
    assert_eq!(items[4].as_bool(), Some(false));
    assert_eq!(items[5].value, Value::DateTimeExtended(1_500_000));
    // 2020-03-01T01:29:59Z
    assert_eq!(items[6].as_datetime(), Some(1_583_026_199));
    for item in &items {
        round_trip(item).unwrap();
    }
    for bad in [
        r#"<PublicExponent type="BigInteger" value="010001"/>"#,
        r#"<KeyMaterial type="ByteString" value="abc"/>"#,
        r#"<InitialDate type="DateTime" value="2021-02-29T00:00:00Z"/>"#,
        r#"<InitialDate type="DateTime" value="2021-01-01T00:00:00.5Z"/>"#,
        r#"<InitialDate type="DateTime" value="2021-01-01 00:00:00Z"/>"#,
        r#"<Sensitive type="Boolean" value="yes"/>"#,
        r#"<LeaseTime type="Interval" value="-1"/>"#,
        r#"<LeaseTime type="Nope" value="1"/>"#,
        r#"<LeaseTime value="1"/>"#,
        r#"<LeaseTime type="Interval"/>"#,
        r#"<LeaseTime type="Interval" valeu="1"/>"#,
    ] {
        assert!(payload(bad).is_err(), "{bad}");
    }
}

#[test]
fn file_quirks_and_pairing() {
    let text = "# TIME 0\n<?xml version=\"1.0\"?>\n<KMIP>\n\
                <RequestMessage/>\n<ResponseMessage/>\n  # TIME 1\n\
                <RequestMessage/>\n<ResponseMessage/>\n</KMIP>\n</KMIP>\n";
    let case = TestCase::parse("quirks.xml", text).unwrap();
    let times: Vec<_> = case.exchanges.iter().map(|e| e.time).collect();
    assert_eq!(times, [Some(0), Some(1)]);
    // Blanked lines keep line numbers true to the file.
    assert_eq!(case.exchanges[1].request.line, 7);
    assert_eq!(case.exchanges[1].response.name, "ResponseMessage");

    let odd = TestCase::parse("odd.xml", "<KMIP><RequestMessage/></KMIP>").unwrap_err();
    assert!(
        odd.contains("odd.xml") && odd.contains("no response"),
        "{odd}"
    );
    let swapped = "<KMIP><ResponseMessage/><RequestMessage/></KMIP>";
    assert!(TestCase::parse("swapped.xml", swapped).is_err());
    assert!(TestCase::parse("empty.xml", "<KMIP></KMIP>").is_err());
    assert!(TestCase::parse("broken.xml", "<KMIP><RequestMessage>").is_err());
    assert!(TestCase::parse("text.xml", "<KMIP>junk<RequestMessage/></KMIP>").is_err());
    let deep = format!("<KMIP>{}</KMIP>", "<A>".repeat(100) + &"</A>".repeat(100));
    assert!(TestCase::parse("deep.xml", &deep).is_err());

    // Conversion errors name the file, the exchange and the XML path.
    let text = r#"<KMIP><RequestMessage><BatchItem/><BatchItem>
                  <Operation type="Enumeration" value="Nope"/></BatchItem></RequestMessage>
                  <ResponseMessage/></KMIP>"#;
    let case = TestCase::parse("path.xml", text).unwrap();
    let err = case
        .message(0, Side::Request, &mut FixedResolver::default())
        .unwrap_err();
    let want = "path.xml: exchange 0 Request: RequestMessage/BatchItem[2]/Operation (line 2)";
    assert!(err.starts_with(want), "{err}");
    assert_eq!(
        case.exchanges[0].request.child("BatchItem").map(|b| b.line),
        Some(1)
    );
    assert!(case
        .message(1, Side::Response, &mut FixedResolver::default())
        .is_err());
}

#[test]
fn vectors_dir_follows_the_environment() {
    // Only reads the variable: setting it here would race with the round-trip test.
    match std::env::var_os("AKM_KMIP_VECTORS") {
        Some(dir) if Path::new(&dir).is_dir() => {
            assert_eq!(xml::vectors_dir(), Some(dir.into()));
        }
        Some(_) => assert_eq!(xml::vectors_dir(), None),
        None => {
            let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kmip/vectors");
            assert_eq!(xml::vectors_dir().is_some(), default.is_dir());
        }
    }
    assert_eq!(xml::SUITES.len(), 4);
}
