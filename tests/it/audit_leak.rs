//! No key material in any log or audit output: `akm serve` runs as a process at log level
//! debug with the journal and two syslog sinks (UDP key=value, TCP LEEF) captured by the test;
//! every operation the server performs is run with known key bytes (registered, created then
//! fetched, a wrapping key and a key wrapped under it) in KMIP 1.4 and 2.0, including failing
//! requests that carry key bytes; then the
//! diagnostic log, the journal and both sink streams are searched for those bytes in hex
//! (both cases), base64 (standard and URL-safe, at every alignment) and Rust's Debug list form.

use crate::support::kmip::*;
use akm::client::Client;
use akm::kmip::attributes::{self, Attr};
use akm::kmip::enums::{
    block_cipher_mode, cryptographic_usage_mask as usage, operation as op,
    revocation_reason_code as rrc, wrapping_method,
};
use akm::kmip::ProtocolVersion as V;
use akm::tls;
use akm::ttlv::{Tag, Ttlv, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_akm");

fn base64(bytes: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Every text form the key could take in a log.
fn needles(key: &[u8]) -> Vec<String> {
    let mut n = vec![hex::encode(key), hex::encode_upper(key)];
    // Inside a longer base64 text the key starts at one of three alignments; the full groups
    // of each are what would appear.
    for skip in 0..3 {
        for url in [false, true] {
            let enc = base64(&key[skip..], url);
            let full = (key.len() - skip) / 3 * 4;
            n.push(enc[..full.saturating_sub(4)].to_owned());
        }
    }
    n.push(
        format!("{:?}", &key[..8])
            .trim_matches(['[', ']'])
            .to_owned(),
    );
    n
}

fn write_config(dir: &Path, udp: u16, tcp: u16) -> std::path::PathBuf {
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let path = config_dir.join("akm.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nauto_init = true\n\
             [tls]\ncerts_dir = \"../certs\"\ncert = \"../certs/server.crt\"\nkey = \"../certs/server.key\"\nclient_ca = \"../certs/ca.crt\"\n\
             [store]\ndata_dir = \"../data\"\n\
             [log]\nlevel = \"debug\"\n\
             [audit]\ncheckpoint_every = 3\n\
             [[audit.sinks]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{udp}\"\n\
             [[audit.sinks]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{tcp}\"\nformat = \"leef\"\nframing = \"rfc3164\"\n"
        ),
    )
    .unwrap();
    path
}

fn serve(config: &Path, log: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("akm serve: listening on ") {
            let addr = addr.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

fn register(v: V, bytes: &[u8], name: &str) -> Vec<Ttlv> {
    register_key_payload(v, bytes, &aes_attrs(Some(name)))
}

fn revoke(u: &str) -> Vec<Ttlv> {
    let mut p = uid(u);
    p.push(Ttlv::structure(
        Tag::REVOCATION_REASON,
        vec![Ttlv::enumeration(
            Tag::REVOCATION_REASON_CODE,
            rrc::CESSATION_OF_OPERATION,
        )],
    ));
    p
}

/// Runs every operation on a key registered with `key`; returns the other secret bytes it
/// saw: a created key's, and in 2.x a wrapping key's and the key wrapped under it.
async fn every_operation(c: &mut Client, key: &[u8], tag: &str) -> Vec<Vec<u8>> {
    let mut secrets = Vec::new();
    let v = c.version;
    let name = format!("leak-{tag}");
    let u = uid_of(&c.call(op::REGISTER, register(v, key, &name)).await.unwrap());
    assert_eq!(key_bytes(&c.call(op::GET, uid(&u)).await.unwrap()), key);
    // The same name again fails with the key bytes in the request.
    assert_ne!(
        reason(c.call(op::REGISTER, register(v, key, &name)).await),
        0
    );
    // A Register without Object Type is malformed, with key bytes inside.
    let mut bad = register(v, key, &format!("{name}-bad"));
    bad.remove(0);
    assert_ne!(reason(c.call(op::REGISTER, bad).await), 0);
    get_attrs(c, &u, &["Name", "State"]).await;
    c.call(op::GET_ATTRIBUTE_LIST, uid(&u)).await.unwrap();
    let comment = |s: &str| Attr::new("x-note", Value::TextString(s.into()));
    if v.is_v2() {
        let wrap = |tag: Tag, a: &Attr| Ttlv::structure(tag, vec![attributes::to_v2(a)]);
        let mut p = uid(&u);
        p.push(wrap(Tag::NEW_ATTRIBUTE, &comment("a")));
        c.call(op::ADD_ATTRIBUTE, p).await.unwrap();
        let mut p = uid(&u);
        p.push(wrap(Tag::CURRENT_ATTRIBUTE, &comment("a")));
        p.push(wrap(Tag::NEW_ATTRIBUTE, &comment("b")));
        c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
        let mut p = uid(&u);
        p.push(wrap(Tag::CURRENT_ATTRIBUTE, &comment("b")));
        c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
        let mut p = uid(&u);
        p.push(wrap(
            Tag::NEW_ATTRIBUTE,
            &Attr::new("Comment", Value::TextString("c".into())),
        ));
        c.call(op::SET_ATTRIBUTE, p).await.unwrap();
    } else {
        let mut p = uid(&u);
        p.push(attributes::to_v1(&comment("a"), None));
        c.call(op::ADD_ATTRIBUTE, p).await.unwrap();
        let mut p = uid(&u);
        p.push(attributes::to_v1(&comment("b"), Some(0)));
        c.call(op::MODIFY_ATTRIBUTE, p).await.unwrap();
        let mut p = uid(&u);
        p.push(Ttlv::text(Tag::ATTRIBUTE_NAME, "x-note"));
        p.push(Ttlv::integer(Tag::ATTRIBUTE_INDEX, 0));
        c.call(op::DELETE_ATTRIBUTE, p).await.unwrap();
    }
    let found = c
        .call(
            op::LOCATE,
            filters(v, &[Attr::new("Name", name_value(&name))]),
        )
        .await
        .unwrap();
    assert_eq!(uids_of(&found), vec![u.clone()]);
    c.call(op::CHECK, uid(&u)).await.unwrap();
    if v.is_v2() {
        c.call(op::LOG, vec![Ttlv::text(Tag::LOG_MESSAGE, "leak test")])
            .await
            .unwrap();
    }
    c.call(op::ACTIVATE, uid(&u)).await.unwrap();
    c.call(op::GET, uid(&u)).await.unwrap();
    c.call(op::OBTAIN_LEASE, uid(&u)).await.unwrap();
    if v.is_v2() {
        secrets.extend(get_wrapped(c, &u, key, &name).await);
    }
    c.call(op::REVOKE, revoke(&u)).await.unwrap();
    c.call(op::DESTROY, uid(&u)).await.unwrap();
    assert_ne!(reason(c.call(op::GET, uid(&u)).await), 0);
    c.call(op::QUERY, vec![]).await.unwrap();
    c.call(op::DISCOVER_VERSIONS, vec![]).await.unwrap();
    let created = create_key(c, Some(&format!("{name}-created"))).await;
    secrets.push(key_bytes(&c.call(op::GET, uid(&created)).await.unwrap()));
    secrets
}

/// Registers a wrapping key with known bytes and gets `u` wrapped under it (AES Key Wrap);
/// returns the wrapping key's bytes and the wrapped key.
async fn get_wrapped(c: &mut Client, u: &str, key: &[u8], name: &str) -> Vec<Vec<u8>> {
    let v = c.version;
    let kek_bytes: Vec<u8> = key.iter().map(|b| b ^ 0x5A).collect();
    let mut attrs = aes_attrs(Some(&format!("{name}-kek")));
    attrs.retain(|a| a.name != "Cryptographic Usage Mask");
    attrs.push(Attr::new(
        "Cryptographic Usage Mask",
        Value::Integer(usage::WRAP_KEY),
    ));
    let nist = || {
        Value::Structure(vec![Ttlv::enumeration(
            Tag::BLOCK_CIPHER_MODE,
            block_cipher_mode::NISTKEYWRAP,
        )])
    };
    attrs.push(Attr::new("Cryptographic Parameters", nist()));
    let payload = register_key_payload(v, &kek_bytes, &attrs);
    let kek = uid_of(&c.call(op::REGISTER, payload).await.unwrap());
    c.call(op::ACTIVATE, uid(&kek)).await.unwrap();
    let spec = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            Ttlv::enumeration(Tag::WRAPPING_METHOD, wrapping_method::ENCRYPT),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, kek),
                    Ttlv::new(Tag::CRYPTOGRAPHIC_PARAMETERS, nist()),
                ],
            ),
        ],
    );
    let mut p = uid(u);
    p.push(spec);
    let got = c.call(op::GET, p).await.unwrap();
    let wrapped = got
        .child(Tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(Tag::KEY_BLOCK))
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .and_then(Ttlv::as_bytes)
        .expect("a wrapped Key Value")
        .to_vec();
    assert_ne!(wrapped.as_slice(), key);
    vec![kek_bytes, wrapped]
}

fn name_value(n: &str) -> Value {
    name(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_bytes_in_any_log_or_audit_output_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(
        dir.path(),
        udp.local_addr().unwrap().port(),
        tcp.local_addr().unwrap().port(),
    );
    let udp_seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = udp_seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = udp.recv(&mut buf) {
            let mut s = seen.lock().unwrap();
            s.extend_from_slice(&buf[..n]);
            s.push(b'\n');
        }
    });
    let tcp_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        // One connection at a time until the server goes away for good.
        while let Ok((mut s, _)) = tcp.accept() {
            let _ = s.read_to_end(&mut all);
            if all.windows(12).any(|w| w == b"reason=final") {
                break;
            }
        }
        all
    });
    let log = dir.path().join("akm.log");
    let (mut server, port) = serve(&config, &log);
    let certs = dir.path().join("certs");
    let tls = tls::client_config(
        &certs.join("admin.crt"),
        &certs.join("admin.key"),
        &certs.join("ca.crt"),
    )
    .unwrap();
    let k14: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(0xA5))
        .collect();
    let k20: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(91).wrapping_add(0x3C))
        .collect();
    let addr = format!("localhost:{port}");
    let mut keys = vec![k14.clone(), k20.clone()];
    for (v, k, tag) in [(V::V1_4, &k14, "14"), (V::V2_0, &k20, "20")] {
        let mut c = Client::connect(&addr, tls.clone(), v).await.unwrap();
        keys.extend(every_operation(&mut c, k, tag).await);
    }
    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(server.wait().unwrap().success());
    let tcp_bytes = tcp_reader.join().unwrap();

    let diagnostic = std::fs::read_to_string(&log).unwrap();
    assert!(
        diagnostic.contains("DEBUG"),
        "the server did not log at debug level"
    );
    let journal = std::fs::read_to_string(dir.path().join("data/audit/audit.log")).unwrap();
    for o in ["Register", "SetAttribute", "Check", "Log", "ObtainLease"] {
        assert!(
            journal.contains(&format!("operation={o} ")),
            "no {o} record"
        );
    }
    let udp_text = String::from_utf8_lossy(&udp_seen.lock().unwrap()).into_owned();
    assert!(udp_text.contains("operation=Get"), "UDP sink got nothing");
    let tcp_text = String::from_utf8_lossy(&tcp_bytes).into_owned();
    assert!(
        tcp_text.contains("operation=Destroy"),
        "TCP sink got nothing"
    );
    for (what, text) in [
        ("diagnostic log", &diagnostic),
        ("audit journal", &journal),
        ("UDP sink", &udp_text),
        ("TCP sink", &tcp_text),
    ] {
        for key in &keys {
            for needle in needles(key) {
                assert!(
                    !text.contains(&needle),
                    "{what} contains key bytes as {needle:?}"
                );
            }
        }
    }
}

#[test]
fn the_needles_find_a_key_written_in_each_form() {
    let key: Vec<u8> = (0..32u8).collect();
    let n = needles(&key);
    assert!(n.contains(&hex::encode(&key)));
    assert!(n.contains(&hex::encode_upper(&key)));
    // base64 of the whole key, and of the key after one byte of other data.
    let mut shifted = vec![0xFFu8];
    shifted.extend_from_slice(&key);
    for enc in [base64(&key, false), base64(&shifted, false)] {
        assert!(
            n.iter().any(|needle| enc.contains(needle.as_str())),
            "{enc}"
        );
    }
    assert_eq!(base64(b"foob", false), "Zm9vYg");
    assert!(format!("{key:?}").contains(n.last().unwrap()));
}
