//! The development PKI behind `akm init` and `akm cert issue`: a self-signed CA, the server
//! certificate, and client certificates whose subject CN names the user and whose OUs name
//! its groups (see [`crate::identity`]). Owns certificate profiles, validity periods and the
//! on-disk layout of a certs directory; private keys go through [`crate::secret_file`]. Every
//! key is ECDSA P-256, generated with ring through rcgen.

mod crl;
mod der;
mod issued;

pub use crl::{revoke, serial_of_cert_file};
pub use issued::{
    certificate_expiry, list_issued, record_issued, sign_csr_file, CsrPolicy, IssuedCert,
    ISSUED_DIR,
};

use crate::secret_file::{self, SecretFileError};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use x509_parser::error::X509Error;
use x509_parser::prelude::parse_x509_certificate;
use x509_parser::time::ASN1Time;
use zeroize::Zeroizing;

pub use der::SpliceError;

/// CA lifetime: ten years, counting leap days.
const CA_DAYS: u32 = 3653;
/// Server certificate lifetime.
const SERVER_DAYS: u32 = 825;
/// Lifetime of client certificates issued by [`init_dev_pki`] and [`issue_client_files`].
pub const CLIENT_DAYS: u32 = 365;
/// How far before "now" certificates start, so a peer whose clock runs a little behind
/// accepts a certificate issued a moment ago.
const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
/// Subject CN of the CA that [`init_dev_pki`] creates.
const DEV_CA_NAME: &str = "akm development CA";
/// Longest file name most Unix file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// Why a certificate could not be generated, loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or key.
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    /// A serial number to revoke is not hex.
    #[error("serial number {serial:?} is not hexadecimal")]
    InvalidSerial {
        /// What was given.
        serial: String,
    },
    /// A PEM input did not hold the expected item.
    #[error("{what} is not valid PEM")]
    Pem {
        /// Which input: "CA certificate", "CA private key", ...
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The CA certificate is not DER X.509.
    #[error("CA certificate is not valid X.509")]
    CaCertificate(#[source] x509_parser::nom::Err<X509Error>),
    /// A certificate or CRL to read is not valid DER.
    #[error("{what} is not valid X.509")]
    Unparsable {
        /// Which input: "certificate to revoke", "existing CRL".
        what: &'static str,
        /// The underlying error.
        #[source]
        source: x509_parser::nom::Err<X509Error>,
    },
    /// rcgen cannot issue under the CA certificate's name or key identifier.
    #[error("CA certificate cannot be used to issue certificates")]
    CaCertificateUnsupported(#[source] rcgen::Error),
    /// The CA private key is not a PKCS#8 key rcgen can sign with (ECDSA, Ed25519 or RSA).
    #[error("CA private key is not a supported PKCS#8 key")]
    CaKey(#[source] rcgen::Error),
    /// The CA certificate lacks basicConstraints CA:TRUE.
    #[error("CA certificate is not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotACa,
    /// The CA private key is not the key of the CA certificate.
    #[error("CA private key does not match the CA certificate")]
    KeyMismatch,
    /// `issue_server` was given no names.
    #[error("a server certificate needs at least one name")]
    NoServerNames,
    /// A server name is neither an IP address nor an ASCII DNS name.
    #[error("server name {name:?} is not an IP address or an ASCII DNS name")]
    InvalidServerName {
        /// The name.
        name: String,
        /// Why rcgen refused it, if it did.
        #[source]
        source: Option<rcgen::Error>,
    },
    /// A common name cannot be used.
    #[error("common name {cn:?} is not usable: {reason}")]
    InvalidCommonName {
        /// The name.
        cn: String,
        /// Why.
        reason: &'static str,
    },
    /// An organizational unit (group) is empty.
    #[error("organizational unit (group) names must not be empty")]
    EmptyOrganizationalUnit,
    /// A validity period that ends before it starts or lies outside what X.509 can express.
    #[error("invalid validity period: {0}")]
    InvalidValidity(&'static str),
    /// Re-encoding a client certificate with its multi-OU subject failed.
    #[error("cannot build the client certificate subject")]
    Splice(#[from] SpliceError),
    /// An output file already exists.
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// Reading, writing or creating a file or directory failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// "read", "write", "create directory" or "inspect".
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing or reading a private key file failed.
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    /// A certificate signing request was refused; the text says why and what to do.
    #[error("certificate signing request refused: {0}")]
    Csr(String),
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start of the validity period.
    pub not_before: SystemTime,
    /// End of the validity period; must be after `not_before`.
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour ago (clock skew allowance) until `days` days from now.
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - CLOCK_SKEW,
            not_after: now + Duration::from_secs(u64::from(days) * SECONDS_PER_DAY),
        }
    }

    /// Sets the period on rcgen parameters.
    fn apply(&self, params: &mut CertificateParams) -> Result<(), PkiError> {
        if self.not_after <= self.not_before {
            return Err(PkiError::InvalidValidity(
                "not_after is not after not_before",
            ));
        }
        params.not_before = asn1_time(self.not_before)?.to_datetime();
        params.not_after = asn1_time(self.not_after)?.to_datetime();
        Ok(())
    }
}

/// Goes through x509-parser's time type so we need no direct dependency on the `time` crate.
fn asn1_time(t: SystemTime) -> Result<ASN1Time, PkiError> {
    let secs = crate::clock::try_unix_secs(t)
        .ok_or(PkiError::InvalidValidity("time is before 1970 or too late"))?;
    ASN1Time::from_timestamp(secs).map_err(|_| PkiError::InvalidValidity("time is too late"))
}

/// An issued certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM "CERTIFICATE".
    pub cert_pem: String,
    /// The private key, PEM PKCS#8 "PRIVATE KEY"; wiped on drop.
    pub key_pem: Zeroizing<String>,
}

impl Issued {
    /// The certificate as DER, e.g. for an in-memory rustls configuration.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        parse_cert_pem(self.cert_pem.as_bytes(), "issued certificate")
    }

    /// The private key as DER, e.g. for an in-memory rustls configuration. Unlike
    /// [`Issued::key_pem`] the returned value is not wiped on drop; keep it short-lived.
    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        parse_key_pem(self.key_pem.as_bytes(), "issued private key")
    }
}

impl fmt::Debug for Issued {
    // Derived Debug would print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A certificate authority that can issue server and client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl fmt::Debug for Ca {
    // Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA: ECDSA P-256, valid for ten years, basicConstraints CA with path
    /// length 0 (it signs only end-entity certificates), key usage keyCertSign and cRLSign.
    pub fn generate(common_name: &str) -> Result<Ca, PkiError> {
        check_common_name(common_name)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Validity::days_from_now(CA_DAYS).apply(&mut params)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
        })
    }

    /// Loads a CA from its PEM certificate and PEM PKCS#8 private key. Checks that the
    /// certificate is a CA certificate and that the key is its key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Ca, PkiError> {
        let cert_der = parse_cert_pem(cert_pem, "CA certificate")?;
        let key_der = Zeroizing::new(parse_key_pem(key_pem, "CA private key")?);
        let key = KeyPair::try_from(&*key_der).map_err(PkiError::CaKey)?;
        check_ca_certificate(&cert_der, &key)?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(PkiError::CaCertificateUnsupported)?;
        Ok(Ca {
            issuer,
            cert_pem: der::certificate_pem(&cert_der),
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER: the trust anchor for servers and clients.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PEM PKCS#8; wiped on drop.
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.issuer.key().serialize_pem())
    }

    /// A server certificate for `names`: one SAN per name (IP addresses as IP SANs, anything
    /// else as a DNS name), CN the first name, extended key usage serverAuth, valid for 825
    /// days.
    pub fn issue_server(&self, names: &[String]) -> Result<Issued, PkiError> {
        let first = names.first().ok_or(PkiError::NoServerNames)?;
        let mut params = leaf_params(Validity::days_from_now(SERVER_DAYS))?;
        params.distinguished_name.push(DnType::CommonName, first);
        params.subject_alt_names = names
            .iter()
            .map(|name| subject_alt_name(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(issued(cert.pem(), &key))
    }

    /// A mirror peer certificate for `names` (SANs as in [`Ca::issue_server`], CN the first
    /// name): extended key usage serverAuth and clientAuth, because a peer both accepts and
    /// opens mirror connections with it. Valid for 825 days.
    pub fn issue_peer(&self, names: &[String]) -> Result<Issued, PkiError> {
        let first = names.first().ok_or(PkiError::NoServerNames)?;
        let mut params = leaf_params(Validity::days_from_now(SERVER_DAYS))?;
        params.distinguished_name.push(DnType::CommonName, first);
        params.subject_alt_names = names
            .iter()
            .map(|name| subject_alt_name(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(issued(cert.pem(), &key))
    }

    /// A client certificate: subject one OU RDN per entry of `ous` (the groups, in order)
    /// followed by CN `cn` (the identity), extended key usage clientAuth.
    pub fn issue_client(
        &self,
        cn: &str,
        ous: &[String],
        validity: Validity,
    ) -> Result<Issued, PkiError> {
        check_common_name(cn)?;
        if ous.iter().any(String::is_empty) {
            return Err(PkiError::EmptyOrganizationalUnit);
        }
        let mut params = leaf_params(validity)?;
        // rcgen can hold only one OU (see `der`), so the subject it writes is replaced below;
        // the CN here keeps its output a sensible certificate in its own right.
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let subject = der::name(cn, ous);
        let cert_der = der::replace_subject(cert.der(), &subject, self.issuer.key())?;
        Ok(issued(der::certificate_pem(&cert_der), &key))
    }

    /// A certificate revocation list (PEM) signed by this CA, revoking the certificates with
    /// these serial numbers (lower-case hex, as in `Principal::serial`), valid for `days`.
    pub fn revocation_list(&self, serials: &[String], days: u32) -> Result<String, PkiError> {
        let validity = Validity::days_from_now(days);
        let this_update = asn1_time(validity.not_before)?.to_datetime();
        let revoked_certs = serials
            .iter()
            .map(|serial| {
                let bytes = hex::decode(serial).map_err(|_| PkiError::InvalidSerial {
                    serial: serial.clone(),
                })?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: this_update,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: asn1_time(validity.not_after)?.to_datetime(),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// Parameters shared by server and client certificates.
fn leaf_params(validity: Validity) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    // The default name carries a placeholder CN; callers set the subject.
    params.distinguished_name = DistinguishedName::new();
    validity.apply(&mut params)?;
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys only sign (the TLS handshake); they never encipher.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Lets verifiers that build chains by key identifier (OpenSSL) find the CA.
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn issued(cert_pem: String, key: &KeyPair) -> Issued {
    Issued {
        cert_pem,
        key_pem: Zeroizing::new(key.serialize_pem()),
    }
}

fn subject_alt_name(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |source| PkiError::InvalidServerName {
        name: name.to_owned(),
        source,
    };
    if name.is_empty() {
        return Err(invalid(None));
    }
    let dns = Ia5String::try_from(name).map_err(|e| invalid(Some(e)))?;
    Ok(SanType::DnsName(dns))
}

fn check_common_name(cn: &str) -> Result<(), PkiError> {
    if cn.is_empty() {
        return Err(invalid_cn(cn, "it is empty"));
    }
    Ok(())
}

/// A CN that is also used as a file name stem (`<cn>.crt`): it must name a single new entry in
/// the output directory, not a path elsewhere or a hidden file.
fn check_file_stem(cn: &str) -> Result<(), PkiError> {
    check_common_name(cn)?;
    if cn.contains('/') {
        return Err(invalid_cn(cn, "it contains '/'"));
    }
    if cn.contains('\0') {
        return Err(invalid_cn(cn, "it contains a NUL byte"));
    }
    if cn.starts_with('.') {
        return Err(invalid_cn(cn, "it starts with '.'"));
    }
    if cn.len() + ".crt".len() > NAME_MAX {
        return Err(invalid_cn(cn, "it is too long for a file name"));
    }
    Ok(())
}

fn invalid_cn(cn: &str, reason: &'static str) -> PkiError {
    PkiError::InvalidCommonName {
        cn: cn.to_owned(),
        reason,
    }
}

fn parse_cert_pem(pem: &[u8], what: &'static str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem).map_err(|source| PkiError::Pem { what, source })
}

fn parse_key_pem(pem: &[u8], what: &'static str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| PkiError::Pem { what, source })
}

/// Refuses a CA certificate that is not marked as a CA, or whose public key is not `key`'s:
/// both mean the wrong files were paired, and issuing would produce unverifiable certificates.
fn check_ca_certificate(cert_der: &[u8], key: &KeyPair) -> Result<(), PkiError> {
    let (_, cert) = parse_x509_certificate(cert_der).map_err(PkiError::CaCertificate)?;
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca {
        return Err(PkiError::NotACa);
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(PkiError::KeyMismatch);
    }
    Ok(())
}

/// The files [`init_dev_pki`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevPkiFiles {
    /// `ca.crt`: the trust anchor for server and clients.
    pub ca_cert: PathBuf,
    /// `ca.key` (0600): needed only to issue more certificates.
    pub ca_key: PathBuf,
    /// `server.crt`.
    pub server_cert: PathBuf,
    /// `server.key` (0600).
    pub server_key: PathBuf,
    /// `admin.crt`: CN=admin, OU=admins.
    pub admin_cert: PathBuf,
    /// `admin.key` (0600).
    pub admin_key: PathBuf,
    /// `user.crt`: CN=user, OU=users.
    pub user_cert: PathBuf,
    /// `user.key` (0600).
    pub user_key: PathBuf,
}

impl DevPkiFiles {
    fn in_dir(dir: &Path) -> DevPkiFiles {
        DevPkiFiles {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            user_cert: dir.join("user.crt"),
            user_key: dir.join("user.key"),
        }
    }

    /// Every path, certificates and keys.
    pub fn all(&self) -> [&Path; 8] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.admin_cert,
            &self.admin_key,
            &self.user_cert,
            &self.user_key,
        ]
    }
}

/// Creates a development PKI in `certs_dir` (created if missing): a new CA, a server
/// certificate for `server_names`, and client certificates `admin` (OU admins) and `user`
/// (OU users), each as `<name>.crt` and `<name>.key`; keys are mode 0600. The caller chooses
/// the server names; `akm init` passes `localhost`, `127.0.0.1` and the host name. Refuses to
/// run, before writing anything, if any of the files already exists.
pub fn init_dev_pki(certs_dir: &Path, server_names: &[String]) -> Result<DevPkiFiles, PkiError> {
    let files = DevPkiFiles::in_dir(certs_dir);
    for path in files.all() {
        refuse_existing(path)?;
    }
    // Everything is generated before anything is written, so a generation error leaves no
    // half-made directory behind.
    let ca = Ca::generate(DEV_CA_NAME)?;
    let server = ca.issue_server(server_names)?;
    let clients = Validity::days_from_now(CLIENT_DAYS);
    let admin = ca.issue_client("admin", &["admins".to_owned()], clients)?;
    let user = ca.issue_client("user", &["users".to_owned()], clients)?;

    create_dir(certs_dir)?;
    write_pair(&files.ca_cert, &files.ca_key, ca.cert_pem(), &ca.key_pem())?;
    write_pair(
        &files.server_cert,
        &files.server_key,
        &server.cert_pem,
        &server.key_pem,
    )?;
    write_pair(
        &files.admin_cert,
        &files.admin_key,
        &admin.cert_pem,
        &admin.key_pem,
    )?;
    write_pair(
        &files.user_cert,
        &files.user_key,
        &user.cert_pem,
        &user.key_pem,
    )?;
    // In the register too, so their expiry is watched like any issued certificate's.
    record_issued(certs_dir, &admin.cert_pem)?;
    record_issued(certs_dir, &user.cert_pem)?;
    Ok(files)
}

/// Issues a client certificate from the CA in `certs_dir` (`ca.crt`, and `ca.key`, which must
/// be mode 0600) and writes `<cn>.crt` and `<cn>.key` (0600) into `out_dir`, created if
/// missing. Valid for [`CLIENT_DAYS`] days. Returns (certificate path, key path). The CN
/// becomes a file name, so it must not be empty, contain `/` or NUL, or start with `.`.
pub fn issue_client_files(
    certs_dir: &Path,
    cn: &str,
    ous: &[String],
    out_dir: &Path,
) -> Result<(PathBuf, PathBuf), PkiError> {
    check_file_stem(cn)?;
    let cert_path = out_dir.join(format!("{cn}.crt"));
    let key_path = out_dir.join(format!("{cn}.key"));
    refuse_existing(&cert_path)?;
    refuse_existing(&key_path)?;

    let ca = load_ca(certs_dir)?;
    let client = ca.issue_client(cn, ous, Validity::days_from_now(CLIENT_DAYS))?;
    create_dir(out_dir)?;
    write_pair(&cert_path, &key_path, &client.cert_pem, &client.key_pem)?;
    record_issued(certs_dir, &client.cert_pem)?;
    Ok((cert_path, key_path))
}

/// Issues a mirror peer certificate for `names` from the CA in `certs_dir` and writes
/// `mirror.crt` and `mirror.key` (0600) into `out_dir`, never overwriting. Returns the paths
/// and the certificate's SHA-256 fingerprint (hex), which the other peers put in their
/// `[[mirror.peers]]` entry.
pub fn issue_peer_files(
    certs_dir: &Path,
    names: &[String],
    out_dir: &Path,
) -> Result<(PathBuf, PathBuf, String), PkiError> {
    let cert_path = out_dir.join("mirror.crt");
    let key_path = out_dir.join("mirror.key");
    refuse_existing(&cert_path)?;
    refuse_existing(&key_path)?;
    let ca = load_ca(certs_dir)?;
    let peer = ca.issue_peer(names)?;
    let fingerprint = hex::encode(crate::crypto::sha256(peer.cert_der()?.as_ref()));
    create_dir(out_dir)?;
    write_pair(&cert_path, &key_path, &peer.cert_pem, &peer.key_pem)?;
    Ok((cert_path, key_path, fingerprint))
}

fn load_ca(certs_dir: &Path) -> Result<Ca, PkiError> {
    let cert_path = certs_dir.join("ca.crt");
    let cert_pem = fs::read(&cert_path).map_err(|source| PkiError::Io {
        action: "read",
        path: cert_path,
        source,
    })?;
    let key_pem = secret_file::read(&certs_dir.join("ca.key"))?;
    Ca::from_pem(&cert_pem, &key_pem)
}

/// Fails if anything, even a dangling symlink, is at `path`.
fn refuse_existing(path: &Path) -> Result<(), PkiError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(PkiError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PkiError::Io {
            action: "inspect",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes the key first so that if it cannot be written (it appeared since we checked, the
/// disk is full) no certificate is left behind without its key.
fn write_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    secret_file::write_new(key_path, key_pem.as_bytes())?;
    Ok(secret_file::write_new_public(
        cert_path,
        cert_pem.as_bytes(),
    )?)
}

#[cfg(test)]
mod tests;
