//! Known-answer tests: NIST SP 800-38A appendix F (ECB, CBC, CTR) and the GCM test cases of
//! McGrew and Viega's GCM specification (used by NIST's GCM validation), including 8- and
//! 60-byte IVs.

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn params<'a>(mode: Mode, iv: &'a [u8], aad: &'a [u8]) -> Params<'a> {
    Params {
        mode,
        pkcs5: false,
        iv,
        aad,
        tag_len: 16,
    }
}

const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const P1: &str = "6bc1bee22e409f96e93d7e117393172a";

#[test]
fn ecb_sp800_38a_f11() {
    let p = params(Mode::Ecb, &[], &[]);
    let (c, tag) = encrypt(&h(K128), &p, &h(P1)).unwrap();
    assert_eq!(hex::encode(&c), "3ad77bb40d7a3660a89ecaf32466ef97");
    assert!(tag.is_none());
    assert_eq!(decrypt(&h(K128), &p, &c, None).unwrap().as_slice(), h(P1));
}

#[test]
fn cbc_sp800_38a_f21() {
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let p = params(Mode::Cbc, &iv, &[]);
    let data = h(&format!("{P1}ae2d8a571e03ac9c9eb76fac45af8e51"));
    let (c, _) = encrypt(&h(K128), &p, &data).unwrap();
    assert_eq!(
        hex::encode(&c),
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    );
    assert_eq!(decrypt(&h(K128), &p, &c, None).unwrap().as_slice(), data);
}

#[test]
fn ctr_sp800_38a_f51() {
    let iv = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    let p = params(Mode::Ctr, &iv, &[]);
    let (c, _) = encrypt(&h(K128), &p, &h(P1)).unwrap();
    assert_eq!(hex::encode(&c), "874d6191b620e3261bef6864990db6ce");
    assert_eq!(decrypt(&h(K128), &p, &c, None).unwrap().as_slice(), h(P1));
}

#[test]
fn cbc_pkcs5_pads_a_whole_block_and_strips_it() {
    let iv = [7u8; 16];
    let p = Params {
        pkcs5: true,
        ..params(Mode::Cbc, &iv, &[])
    };
    for len in [0, 1, 15, 16, 17, 33] {
        let data = vec![0xA5u8; len];
        let (c, _) = encrypt(&h(K128), &p, &data).unwrap();
        assert_eq!(c.len(), (len / 16 + 1) * 16);
        assert_eq!(decrypt(&h(K128), &p, &c, None).unwrap().as_slice(), data);
    }
}

#[test]
fn bad_padding_and_misaligned_data_are_refused() {
    let iv = [7u8; 16];
    let plain = params(Mode::Cbc, &iv, &[]);
    let padded = Params {
        pkcs5: true,
        ..plain
    };
    // A block whose plaintext ends in 0x00 is not PKCS#5-padded.
    let (c, _) = encrypt(&h(K128), &plain, &[0u8; 16]).unwrap();
    assert_eq!(
        decrypt(&h(K128), &padded, &c, None),
        Err(CipherError::BadPadding)
    );
    assert_eq!(
        encrypt(&h(K128), &plain, &[1u8; 15]),
        Err(CipherError::NotBlockAligned)
    );
    assert_eq!(
        decrypt(&h(K128), &plain, &[1u8; 15], None),
        Err(CipherError::NotBlockAligned)
    );
    assert_eq!(
        decrypt(&h(K128), &padded, &[], None),
        Err(CipherError::NotBlockAligned)
    );
}

#[test]
fn wrong_lengths_are_refused() {
    let p = params(Mode::Cbc, &[0u8; 12], &[]);
    assert_eq!(
        encrypt(&h(K128), &p, &[0u8; 16]),
        Err(CipherError::IvLength("16 bytes"))
    );
    let p = params(Mode::Ecb, &[], &[]);
    assert_eq!(
        encrypt(&[0u8; 15], &p, &[0u8; 16]),
        Err(CipherError::KeyLength)
    );
    let gcm = |tag_len| Params {
        tag_len,
        ..params(Mode::Gcm, &[0u8; 12], &[])
    };
    for bad in [0, 1, 4, 8, 11, 17, 32] {
        assert_eq!(
            encrypt(&h(K128), &gcm(bad), b"x"),
            Err(CipherError::TagLength)
        );
    }
    let no_iv = params(Mode::Gcm, &[], &[]);
    assert!(matches!(
        encrypt(&h(K128), &no_iv, b"x"),
        Err(CipherError::IvLength(_))
    ));
    let ctr_pad = Params {
        pkcs5: true,
        ..params(Mode::Ctr, &[0u8; 16], &[])
    };
    assert_eq!(
        encrypt(&h(K128), &ctr_pad, b"x"),
        Err(CipherError::PaddingMode)
    );
}

const GCM_K: &str = "feffe9928665731c6d6a8f9467308308";
const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

fn gcm_case(key: &str, iv: &str, aad: &str, plain: &str, cipher: &str, tag: &str) {
    let (iv, aad) = (h(iv), h(aad));
    let p = params(Mode::Gcm, &iv, &aad);
    let (c, t) = encrypt(&h(key), &p, &h(plain)).unwrap();
    assert_eq!(hex::encode(&c), cipher);
    assert_eq!(hex::encode(t.as_ref().unwrap()), tag);
    let back = decrypt(&h(key), &p, &c, t.as_deref()).unwrap();
    assert_eq!(back.as_slice(), h(plain));
    // Any flipped bit in the tag, data or associated data fails authentication.
    let mut bad_tag = t.unwrap();
    bad_tag[0] ^= 1;
    assert_eq!(
        decrypt(&h(key), &p, &c, Some(&bad_tag)),
        Err(CipherError::Authentication)
    );
    // A truncated tag verifies against the truncated computation.
    let short = Params { tag_len: 12, ..p };
    assert!(decrypt(&h(key), &short, &c, Some(&h(tag)[..12])).is_ok());
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "GCM encryption with a caller IV is refused in the FIPS build"
)]
fn gcm_test_case_2_zero_key() {
    gcm_case(
        "00000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "00000000000000000000000000000000",
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    );
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "GCM encryption with a caller IV is refused in the FIPS build"
)]
fn gcm_test_case_4_associated_data() {
    gcm_case(
        GCM_K,
        "cafebabefacedbaddecaf888",
        GCM_A,
        GCM_P,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    );
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "GCM encryption with a caller IV is refused in the FIPS build"
)]
fn gcm_test_case_5_eight_byte_iv() {
    gcm_case(
        GCM_K,
        "cafebabefacedbad",
        GCM_A,
        GCM_P,
        "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598",
        "3612d2e79e3b0785561be14aaca2fccb",
    );
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "GCM encryption with a caller IV is refused in the FIPS build"
)]
fn gcm_test_case_6_sixty_byte_iv() {
    gcm_case(
        GCM_K,
        "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
        GCM_A,
        GCM_P,
        "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5",
        "619cc5aefffe0bfa462af43c1699d050",
    );
}
