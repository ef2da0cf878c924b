//! TLS configuration for the server: rustls with the ring provider, TLS 1.2 and 1.3, client
//! certificates required and verified against the configured CA bundle (optionally narrowed
//! to pinned CA fingerprints) and CRLs, read with the PEM helpers of [`crate::tls`].
//! [`TlsHandle`] holds the server configuration in force, which a
//! reload (SIGHUP, `akm tls reload`) replaces for new handshakes.

use crate::config::TlsConfig;
use crate::store::CertRevocation;
use crate::tls::{load_certs, load_crls, load_key, pinned_roots, provider, roots, TlsError};
use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// The server's TLS configuration from the `[tls]` section: certificate, key, client CA
/// bundle (narrowed to `client_ca_fingerprints` if any), CRLs. Reading it again is how a
/// reload picks up new CRLs.
pub fn from_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(load(tls)?.0)
}

/// The server configuration and the revoked certificates, from one reading of the files.
fn load(tls: &TlsConfig) -> Result<(Arc<rustls::ServerConfig>, Revoked), TlsError> {
    let pins: Vec<[u8; 32]> = tls
        .client_ca_fingerprints
        .iter()
        .filter_map(|f| crate::config::parse_fingerprint(f))
        .collect();
    let crls = load_crls(&tls.crls)?;
    let revoked = Revoked::from_crls(&crls);
    let config = server_config_from(
        load_certs(&tls.cert)?,
        load_key(&tls.key)?,
        pinned_roots(&tls.client_ca, &pins)?,
        crls,
    )?;
    Ok((config, revoked))
}

/// The certificates the CRLs revoke, by issuer name and serial (lower-case hex, as
/// `Principal::serial`), so connections made before a revocation can be closed too.
#[derive(Debug, Default)]
pub struct Revoked(HashSet<(String, String)>);

impl Revoked {
    /// Every entry of `crls` (rustls has already checked their signatures when the verifier
    /// was built from the same CRLs; one that does not parse here contributes nothing).
    pub fn from_crls(crls: &[CertificateRevocationListDer<'_>]) -> Revoked {
        let set = crl_entries(crls)
            .into_iter()
            .map(|r| (r.issuer, r.serial))
            .collect();
        Revoked(set)
    }

    /// Whether the certificate `serial` of `issuer` is revoked.
    pub fn contains(&self, issuer: &str, serial: &str) -> bool {
        self.0.contains(&(issuer.to_owned(), serial.to_owned()))
    }
}

/// Every entry of `crls`, with its reason and date (one that does not parse contributes
/// nothing: rustls has already checked the signatures of the CRLs it was built from).
pub fn crl_entries(crls: &[CertificateRevocationListDer<'_>]) -> Vec<CertRevocation> {
    let mut out = Vec::new();
    for der in crls {
        let Ok((_, crl)) = x509_parser::prelude::parse_x509_crl(der.as_ref()) else {
            tracing::warn!("a CRL does not parse; its entries cannot close open connections");
            continue;
        };
        let issuer = crl.issuer().to_string();
        for entry in crl.iter_revoked_certificates() {
            let code = entry.reason_code().map(|(_, r)| r);
            // A delta CRL's removeFromCRL lifts a hold: it is not a revocation.
            if code == Some(x509_parser::x509::ReasonCode::RemoveFromCRL) {
                continue;
            }
            let reason = code.map_or_else(|| "unspecified".into(), |r| r.to_string());
            out.push(CertRevocation {
                issuer: issuer.clone(),
                serial: crate::identity::serial_hex(entry.raw_serial()),
                reason,
                revoked_at: entry.revocation_date.timestamp(),
            });
        }
    }
    out
}

/// The server TLS configuration in force, and the certificates its CRLs revoke. New
/// handshakes use the configuration it holds when they start; a reload swaps both, and open
/// connections check [`TlsHandle::revokes`] before each request.
#[derive(Debug)]
pub struct TlsHandle {
    config: ArcSwap<rustls::ServerConfig>,
    revoked: ArcSwap<Revoked>,
}

impl TlsHandle {
    /// A handle holding `config`, with nothing known to be revoked beyond what its verifier
    /// checks at the handshake.
    pub fn new(config: Arc<rustls::ServerConfig>) -> TlsHandle {
        TlsHandle {
            config: ArcSwap::new(config),
            revoked: ArcSwap::default(),
        }
    }

    /// A handle loaded from the files `tls` names.
    pub fn from_config(tls: &TlsConfig) -> Result<TlsHandle, TlsError> {
        let (config, revoked) = load(tls)?;
        Ok(TlsHandle {
            config: ArcSwap::new(config),
            revoked: ArcSwap::from_pointee(revoked),
        })
    }

    /// The configuration for a new handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.config.load_full()
    }

    /// Whether the CRLs in force revoke the certificate `serial` of `issuer`.
    pub fn revokes(&self, issuer: &str, serial: &str) -> bool {
        self.revoked.load().contains(issuer, serial)
    }

    /// Rebuilds the configuration from the files `tls` names and puts it in force; on
    /// failure the previous one stays.
    pub fn reload_from(&self, tls: &TlsConfig) -> Result<(), TlsError> {
        let (config, revoked) = load(tls)?;
        self.revoked.store(Arc::new(revoked));
        self.replace(config);
        Ok(())
    }

    /// Puts `config` in force for new handshakes.
    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        self.config.store(config);
    }

    /// Puts files read by [`Loaded::read`] in force (configuration and revocations).
    pub fn put(&self, loaded: Loaded) {
        self.revoked.store(Arc::new(loaded.1));
        self.replace(loaded.0);
    }
}

/// The TLS files read and checked but not yet in force: a configuration reload reads all of
/// them before it changes anything, then puts them in force with [`TlsHandle::put`].
#[derive(Debug)]
pub struct Loaded(Arc<rustls::ServerConfig>, Revoked);

impl Loaded {
    /// Reads the files `tls` names, as [`TlsHandle::from_config`] does.
    pub fn read(tls: &TlsConfig) -> Result<Loaded, TlsError> {
        let (config, revoked) = load(tls)?;
        Ok(Loaded(config, revoked))
    }
}

/// The server's TLS configuration from PEM files.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    crls: &[impl AsRef<Path>],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let crl_ders = load_crls(crls)?;
    server_config_from(
        load_certs(cert)?,
        load_key(key)?,
        roots(client_ca)?,
        crl_ders,
    )
}

/// The server's TLS configuration from parsed parts (tests build these in memory).
pub fn server_config_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: RootCertStore,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .with_crls(crls)
            .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    enable_resumption(&mut config)?;
    Ok(Arc::new(config))
}

/// Sessions kept for TLS 1.2 session-ID resumption (rustls keeps 256 by default). An entry
/// holds the session secrets and the client's certificate chain (~2 KiB), so this is a few
/// MiB at most.
const SESSION_CACHE_ENTRIES: usize = 2048;

/// Lets clients that reconnect resume their session instead of repeating the full
/// handshake and certificate verification: stateless TLS 1.3 tickets (and TLS 1.2 tickets)
/// from a ring ticketer, whose keys rotate every few hours and are never written anywhere,
/// plus a larger TLS 1.2 session cache. A resumed session carries the client certificate
/// chain of its full handshake, so the identity is the same; revocations loaded since then
/// are checked before every request (see [`TlsHandle::revokes`]), and a reload makes a new
/// ticketer, so tickets issued before it are refused.
fn enable_resumption(config: &mut rustls::ServerConfig) -> Result<(), TlsError> {
    config.ticketer = crate::crypto::backend::ticketer()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    Ok(())
}
