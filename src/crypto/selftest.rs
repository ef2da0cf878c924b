//! Start-up known-answer self-tests of every primitive akm uses (FIPS 140-3 style): SHA-256,
//! HMAC-SHA-256, AES-256-GCM as the KEK uses it, the server-side AES modes (GCM, CBC), AES Key
//! Wrap, the CTR_DRBG, RSA PKCS#1 v1.5 and ECDSA P-256 signing and verification. If any one
//! gives a wrong answer the server refuses to start and says which.
//!
//! Test hook: the environment variable `AKM_SELFTEST_CORRUPT=<test name>` flips one bit of
//! that test's expected answer, so a test can prove the server refuses to start. It can only
//! ever make start-up fail, never pass, and akm logs that it is set.

use super::{cipher, digest, drbg, keywrap, CryptoError};
use crate::crypto::backend::gcm::{Aes256Gcm, Payload};
use crate::crypto::backend::prim::signature::{self, KeyPair};
use crate::kmip::enums::{cryptographic_algorithm as alg, hashing_algorithm as ha};

/// The environment variable that corrupts one known answer (test hook, see the module doc).
pub const CORRUPT_ENV: &str = "AKM_SELFTEST_CORRUPT";

/// The names of the tests, in the order they run.
pub const TESTS: &[&str] = &[
    "sha256",
    "hmac",
    "aes-gcm",
    "aes-modes",
    "aes-kw",
    "drbg",
    "rsa",
    "ecdsa",
];

/// The message every signature test signs.
const MESSAGE: &[u8] = b"akm self-test message";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("self-test vectors are hex")
}

/// Runs every test; `corrupt` names one whose expected answer is altered (test hook).
pub fn run_with(corrupt: Option<&str>) -> Result<(), CryptoError> {
    if let Some(name) = corrupt {
        tracing::error!(
            test = name,
            "{CORRUPT_ENV} is set: a self-test answer is deliberately wrong and akm will not start"
        );
    }
    // The expected value for `name`, with one bit flipped if that test is to be corrupted.
    let expect = |name: &str, hex: &str| -> Vec<u8> {
        let mut v = h(hex);
        if corrupt == Some(name) {
            v[0] ^= 1;
        }
        v
    };
    let check = |name: &'static str, ok: bool| -> Result<(), CryptoError> {
        if ok {
            Ok(())
        } else {
            tracing::error!(test = name, "cryptographic self-test failed");
            Err(CryptoError::SelfTest(name))
        }
    };
    check("sha256", sha256(&expect("sha256", SHA256_ABC)))?;
    check("hmac", hmac(&expect("hmac", HMAC_TC2)))?;
    check("aes-gcm", aes_gcm(&expect("aes-gcm", GCM_TC14)))?;
    check("aes-modes", aes_modes(&expect("aes-modes", CBC_F21)))?;
    check("aes-kw", aes_kw(&expect("aes-kw", KW_41)))?;
    // The FIPS build draws from the module's DRBG, which runs its own known-answer tests;
    // akm's CTR_DRBG is not used there.
    let fips = crate::crypto::backend::FIPS_BUILD;
    check("drbg", fips || drbg_kat(&expect("drbg", DRBG_BITS)))?;
    check("rsa", rsa(&expect("rsa", RSA_SIGNATURE)))?;
    check("ecdsa", ecdsa(&expect("ecdsa", EC_SIGNATURE)))?;
    Ok(())
}

/// Runs every test, honouring [`CORRUPT_ENV`].
pub fn run() -> Result<(), CryptoError> {
    let corrupt = std::env::var(CORRUPT_ENV).ok();
    run_with(corrupt.as_deref())
}

/// FIPS 180-2 B.1: SHA-256("abc").
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn sha256(expected: &[u8]) -> bool {
    digest::hash(ha::SHA_256, b"abc").is_ok_and(|d| d == expected)
}

/// RFC 4231 test case 2, HMAC-SHA-256.
const HMAC_TC2: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

fn hmac(expected: &[u8]) -> bool {
    let data = b"what do ya want for nothing?";
    digest::mac(alg::HMAC_SHA256, b"Jefe", data).is_ok_and(|m| m == expected)
        && digest::mac_verify(alg::HMAC_SHA256, b"Jefe", data, expected).unwrap_or(false)
}

/// GCM specification test case 14 (AES-256, zero key, IV and block): ciphertext then tag.
const GCM_TC14: &str = "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919";

fn gcm_params(iv: &[u8]) -> cipher::Params<'_> {
    cipher::Params {
        mode: cipher::Mode::Gcm,
        pkcs5: false,
        iv,
        aad: &[],
        tag_len: 16,
    }
}

/// AES-256-GCM both as the KEK wraps (aes-gcm) and as Encrypt performs it (crypto::cipher).
fn aes_gcm(expected: &[u8]) -> bool {
    let key = [0u8; 32];
    let iv = [0u8; 12];
    let Ok(kek) = Aes256Gcm::new_from_slice(&key) else {
        return false;
    };
    let sealed = kek.encrypt(
        &iv,
        Payload {
            msg: &[0u8; 16],
            aad: &[],
        },
    );
    let ours = cipher::encrypt(&key, &gcm_params(&iv), &[0u8; 16]);
    let ours_ok = ours.is_ok_and(|(c, t)| {
        let mut all = c;
        all.extend(t.unwrap_or_default());
        all == expected
    });
    let opened = kek.decrypt(
        &iv,
        Payload {
            msg: expected,
            aad: &[],
        },
    );
    if crate::crypto::backend::FIPS_BUILD {
        // The FIPS build refuses caller-nonce GCM encryption (backend::gcm): the known answer is
        // checked through the KEK id probe (the same encryption) and the two openings.
        let probe = kek.id_probe(&[0u8; 16]);
        let decrypted = cipher::decrypt(
            &key,
            &gcm_params(&iv),
            &expected[..16],
            Some(&expected[16..]),
        );
        return probe.is_ok_and(|s| s == expected)
            && decrypted.is_ok_and(|p| p.as_slice() == [0u8; 16])
            && opened.is_ok_and(|p| p == [0u8; 16]);
    }
    sealed.is_ok_and(|s| s == expected) && ours_ok && opened.is_ok_and(|p| p == [0u8; 16])
}

/// SP 800-38A F.2.1, CBC-AES128 (first block); ECB and CTR share the block function.
const CBC_F21: &str = "7649abac8119b246cee98e9b12e9197d";

fn aes_modes(expected: &[u8]) -> bool {
    let key = h("2b7e151628aed2a6abf7158809cf4f3c");
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let plain = h("6bc1bee22e409f96e93d7e117393172a");
    let p = cipher::Params {
        mode: cipher::Mode::Cbc,
        pkcs5: false,
        iv: &iv,
        aad: &[],
        tag_len: 16,
    };
    cipher::encrypt(&key, &p, &plain).is_ok_and(|(c, _)| c == expected)
        && cipher::decrypt(&key, &p, expected, None).is_ok_and(|d| d.as_slice() == plain)
}

/// RFC 3394 §4.1: 128 bits of key data wrapped with a 128-bit KEK.
const KW_41: &str = "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5";

fn aes_kw(expected: &[u8]) -> bool {
    let kek = h("000102030405060708090a0b0c0d0e0f");
    let data = h("00112233445566778899aabbccddeeff");
    keywrap::wrap(&kek, &data).is_ok_and(|w| w == expected)
        && keywrap::unwrap(&kek, expected).is_ok_and(|d| d.as_slice() == data)
}

/// CAVP CTR_DRBG [AES-256 no df] no reseed, COUNT 0: the second 512-bit Generate.
const DRBG_ENTROPY: &str = "df5d73faa468649edda33b5cca79b0b05600419ccb7a879ddfec9db32ee494e5531b51de16a30f769262474c73bec010";
const DRBG_BITS: &str = "d1c07cd95af8a7f11012c84ce48bb8cb87189e99d40fccb1771c619bdf82ab2280b1dc2f2581f39164f7ac0c510494b3a43c41b7db17514c87b107ae793e01c5";

fn drbg_kat(expected: &[u8]) -> bool {
    let Ok(entropy) = <[u8; drbg::SEED_LEN]>::try_from(h(DRBG_ENTROPY)) else {
        return false;
    };
    let mut d = drbg::CtrDrbg::new(&entropy, &[]);
    let mut out = [0u8; 64];
    d.generate(&mut out, &[]);
    d.generate(&mut out, &[]);
    out[..] == *expected
}

/// RSA PKCS#1 v1.5 SHA-256: the signature is deterministic, so signing is a known answer;
/// then it must verify, and not over another message.
fn rsa(expected: &[u8]) -> bool {
    let Ok(key) = signature::RsaKeyPair::from_der(&h(RSA_PRIVATE)) else {
        return false;
    };
    let mut sig = vec![0u8; crate::crypto::backend::rsa_modulus_len(&key)];
    let rng = crate::crypto::backend::prim::rand::SystemRandom::new();
    if key
        .sign(&signature::RSA_PKCS1_SHA256, &rng, MESSAGE, &mut sig)
        .is_err()
    {
        return false;
    }
    let public = h(RSA_PUBLIC);
    let verifier =
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public);
    sig == expected
        && verifier.verify(MESSAGE, expected).is_ok()
        && verifier.verify(b"another message", expected).is_err()
}

/// ECDSA P-256 SHA-256: signatures are randomized, so the known answer is verifying a fixed
/// signature, plus a sign-then-verify with the fixed key (pairwise consistency).
fn ecdsa(expected: &[u8]) -> bool {
    let rng = crate::crypto::backend::prim::rand::SystemRandom::new();
    let Ok(key) = crate::crypto::backend::ecdsa_from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &h(EC_PKCS8),
    ) else {
        return false;
    };
    let public = h(EC_PUBLIC);
    if key.public_key().as_ref() != public.as_slice() {
        return false;
    }
    let verifier = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &public);
    let fresh = key.sign(&rng, MESSAGE);
    verifier.verify(MESSAGE, expected).is_ok()
        && verifier.verify(b"another message", expected).is_err()
        && fresh.is_ok_and(|s| verifier.verify(MESSAGE, s.as_ref()).is_ok())
}

/// A 2048-bit RSA key made only for this self-test (PKCS#1 RSAPrivateKey DER).
const RSA_PRIVATE: &str = concat!(
    "308204a40201000282010100d44850b164999727abc2abbe97185b59a385ccba1d616345c67dab8f72d65ba3",
    "c1c652eb9c84bc247a55aaa800a73c23970f58cae9878f75721e4227223e3e611e299dd7f30324cc50f07505",
    "8a25f0da66eda6fcfb036beac6a2e78d7c4dffbd37185dc35a216bc38d7566b2c5066e3bb6373c8a0a7f5fe6",
    "28bb79aaf289e5f07582c21ab51601d10b16cbfc5495dd6186d8d3c88551c028e113e5c2e71eb0016970972b",
    "5e0b95316c06280bb53546d33364e98e9b8c37491505c91c88028d1bdffbcb47c91a3ee631ac7fa108f8cd45",
    "5ef20454b7b9e9da60a036348b22139ba2032bb16b9a8065dd6975b0509fd46aa4836242538b0b60dced48a6",
    "7995577f0203010001028201001c82c1e3b161377dea81b0d35e33b5412ac733a1e3844af2fa1fb2c5076566",
    "d56d971757f1a39a29440cf168b2fdc303fcabe0ff0fb257402cdd8780fe0662166518adcc6d2504f23404b7",
    "92d0e51b9e19a8dd7ea8afe2f49b4d11d05cdb94f772c8e0fef5c1fb593e4c80488e51b8c86846aee8d3541c",
    "2b2b595293f513344082bf54a549b811fd816553c1adfbdcd96172ed9ce94641e30c64aa10e864a7e9057953",
    "b869145a315bb2a0aa5a133c7efa33b4d3f52aee6919468a9e401b86e4af2d2406b245636026bf55b6e646a5",
    "d055106ba43904b681904373b2c4b8f8127b06c2f477497a31a880a85a3675298ecbd3ee159a69d9d339e270",
    "667015a2c102818100f17b531c556e4dc21fcdc6d682bcf9a62cb2ab2e2f13a473417b5ad8dc731d25f396e2",
    "2aca0402045f80bdd33af5c7d305269d0b7e87240b35eecbe3116c47c5d6178e6dd5a2bf251b90979b01c0ad",
    "5ac4ed73b7b08292cecee3d12f0d6df8aa7e4ad406c0842efbe506603b94df5295319fcb825283135f7a4235",
    "294c12d74f02818100e10b94c905bebf1f660e0fd24c12a073e995766103d785f20d6d31946776396741e54e",
    "57a224729c277420d76e46fbb53d3b20b8920778eb65c2b4b92e2c6edcc14d5f1e0ecdb7160249d89a202fcd",
    "cfe0702801ee77a15186129a01b2a50436cb26bf3aafcceca20647b83e9cf0d84605dc2555b72c4250453ea4",
    "3ebfaf70d1028181008cd5ce1d023e389f750900646f0f63d264d3373ed239f4793bc183b462adc85c2ffad9",
    "a0f6fceb683d82ca32fd7a06b6ad945d972c8e08997934f238561afea90539ebd966f569e16c7821d3476c66",
    "2e4017f49b37189022894b18df064812f4ec7f1bb56c662b38c1d3bc2043ad136eebe8343aa780c6b5b28a16",
    "932548ffc50281804625a1fef6f77a03838026965a7803e39d8fa512a06bf1a87d5ee7f1663e87ae13f031f7",
    "46e72d825719ef92b721111c713599016f233d21c2da6a12bebdc2e0b4b03551dd336a3a460456abd4149286",
    "9562e05599cb58515d05375408273fa504b5d32dabd6a87be8913a70e9e278c77ad4201f13b58c06114f714a",
    "cddd15c1028181009728dfb6d3e8ebaa0bb74c5fc33270c8125208739157d98eaf495a8c5db1467565e8050c",
    "a0f3560e0001c45993f0be6229d1792a18674344dc60dd5c7c955e0254e1789e911c51ce61a7db7f80f7d9f4",
    "7bcbaeba50f351337515421d91e7b6352ddd9b5c2944b0a4a8fedeb2c826dde8c175919c03fba08aaa775ed4",
    "a2421ca6",
);
/// Its public key (PKCS#1 RSAPublicKey DER).
const RSA_PUBLIC: &str = concat!(
    "3082010a0282010100d44850b164999727abc2abbe97185b59a385ccba1d616345c67dab8f72d65ba3c1c652",
    "eb9c84bc247a55aaa800a73c23970f58cae9878f75721e4227223e3e611e299dd7f30324cc50f075058a25f0",
    "da66eda6fcfb036beac6a2e78d7c4dffbd37185dc35a216bc38d7566b2c5066e3bb6373c8a0a7f5fe628bb79",
    "aaf289e5f07582c21ab51601d10b16cbfc5495dd6186d8d3c88551c028e113e5c2e71eb0016970972b5e0b95",
    "316c06280bb53546d33364e98e9b8c37491505c91c88028d1bdffbcb47c91a3ee631ac7fa108f8cd455ef204",
    "54b7b9e9da60a036348b22139ba2032bb16b9a8065dd6975b0509fd46aa4836242538b0b60dced48a6799557",
    "7f0203010001",
);
/// RSASSA-PKCS1-v1_5 with SHA-256 over [`MESSAGE`] under [`RSA_PRIVATE`] (deterministic).
const RSA_SIGNATURE: &str = concat!(
    "408501c30592ee7668faf820f5e878aaf39ce7a652be1008392105608504ddc1b8d32df6b0cf219193aeffd9",
    "f73f42ac6550a6eca2757a4294b6764829dc2376419413a98c582bebc37a627ccbd2f1e4cac001e140bba4bf",
    "1ba8d33783402018f46eac84bafc8e16be4b7b41b01b2bea4e2f353f29e99c73a933980b3534133788dec16c",
    "168adbb2ef575791bf8954566f0c14afd3bffbf88aa07c952fc60373c382f3f351590a30213dab497ba637ba",
    "11a43b7e4af492c087ff0d3e3af46ec9abc3384a82823d76692dd54e1e182980355f29008a0dcf8f37aeb477",
    "c8dcf80ca44dc674ebe6b45e865a0596bfba3d83f09db2d19f087d8575fd201024ce751d",
);
/// A P-256 key made only for this self-test (PKCS#8 DER).
const EC_PKCS8: &str = concat!(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420564f62266ed052ca",
    "333bc0a4e16630c8eb375d4812dfdf2351dba2c5dce98f9fa144034200041c817cdaf547286b43125aba73d8",
    "af456da064c6a0ee5deb0120024878186fcfc1619095392ebc4a0d19ab4f6df0c97744b0c708e7bbae2201c9",
    "4138e7386bc5",
);
/// Its public key (uncompressed point).
const EC_PUBLIC: &str = concat!(
    "041c817cdaf547286b43125aba73d8af456da064c6a0ee5deb0120024878186fcfc1619095392ebc4a0d19ab",
    "4f6df0c97744b0c708e7bbae2201c94138e7386bc5",
);
/// An ECDSA P-256 SHA-256 signature (ASN.1 DER) over [`MESSAGE`] under [`EC_PKCS8`].
const EC_SIGNATURE: &str = concat!(
    "30450220572fa672a997c134ccbe576ff7c41cdcec1c37183cc4c2255468c4673dc7ebc7022100ba09b24206",
    "044aaaa427eb18f4e15da72cf11ef55282f180dd76eaed283f6d94",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_self_test_passes() {
        run_with(None).unwrap();
    }

    #[test]
    fn each_corrupted_vector_fails_its_own_test() {
        for name in TESTS {
            if crate::crypto::backend::FIPS_BUILD && *name == "drbg" {
                continue; // the module's DRBG, not akm's, serves the FIPS build
            }
            match run_with(Some(name)) {
                Err(CryptoError::SelfTest(failed)) => assert_eq!(failed, *name),
                other => panic!("corrupting {name} gave {other:?}"),
            }
        }
        // An unknown name corrupts nothing.
        run_with(Some("no-such-test")).unwrap();
    }
}
