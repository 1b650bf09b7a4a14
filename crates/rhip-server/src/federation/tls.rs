//! Mutual TLS between federation peers (DESIGN §6–7). Both sides check the
//! certificate chain to the federation CA (rustls' WebPKI verifiers, which
//! also refuse expired certificates) and then the region the certificate
//! names in its `urn:rhip:region:` SAN: a server accepts only its parent and
//! children, a client accepts only the peer it meant to reach. Every refusal
//! is reported on a channel so that it is audited, not just logged.

use rhip_core::RegionCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// The URI SAN prefix `rhip federation init` writes into node certificates.
pub const REGION_URI_PREFIX: &str = "urn:rhip:region:";

/// A connection refused at the TLS layer, to be written to the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Subject common name of the certificate offered, if it could be read.
    pub subject: Option<String>,
    /// Region the certificate names, if any.
    pub region: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

/// The node's own certificate and key, the CA its peers must chain to.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    roots: Arc<rustls::RootCertStore>,
}

impl TlsMaterial {
    /// Reads the PEM files named in `[federation]`; errors name the file.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<TlsMaterial, String> {
        let problem = |path: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| problem(cert, &e))?;
        if certs.is_empty() {
            return Err(problem(cert, &"no certificate in the file"));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| problem(key, &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for root in CertificateDer::pem_file_iter(ca).map_err(|e| problem(ca, &e))? {
            roots.add(root.map_err(|e| problem(ca, &e))?).map_err(|e| problem(ca, &e))?;
        }
        if roots.is_empty() {
            return Err(problem(ca, &"no CA certificate in the file"));
        }
        Ok(TlsMaterial { certs, key: Arc::new(private), roots: Arc::new(roots) })
    }

    /// The listener's configuration: client certificates are mandatory, must
    /// chain to the CA, be valid now, and name one of `peers`.
    pub fn server_config(
        &self,
        peers: HashSet<RegionCode>,
        refusals: UnboundedSender<Refusal>,
    ) -> Result<rustls::ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("federation CA: {e}"))?;
        let verifier = Arc::new(PeerClientVerifier { inner, peers, refusals });
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| format!("federation certificate: {e}"))
    }

    /// A client configuration for talking to `peer`: presents this node's
    /// certificate and accepts only a server certificate naming `peer`.
    pub fn client_config(&self, peer: RegionCode) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("federation CA: {e}"))?;
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerServerVerifier { inner, peer }))
            .with_client_auth_cert(self.certs.clone(), self.key.clone_key())
            .map_err(|e| format!("federation certificate: {e}"))
    }
}

/// The region a node certificate names in its `urn:rhip:region:` URI SAN.
pub fn region_of(cert: &CertificateDer<'_>) -> Option<RegionCode> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    names.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => {
            uri.strip_prefix(REGION_URI_PREFIX).and_then(|code| RegionCode::parse(code).ok())
        }
        _ => None,
    })
}

fn subject_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(name)
}

#[derive(Debug)]
struct PeerClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    peers: HashSet<RegionCode>,
    refusals: UnboundedSender<Refusal>,
}

impl PeerClientVerifier {
    fn refuse(&self, cert: &CertificateDer<'_>, reason: String) -> rustls::Error {
        let refusal = Refusal {
            subject: subject_of(cert),
            region: region_of(cert).map(|r| r.to_string()),
            reason: reason.clone(),
        };
        tracing::warn!(subject = ?refusal.subject, region = ?refusal.region, %reason, "federation peer refused");
        // The receiver is gone only while the node shuts down.
        let _ = self.refusals.send(refusal);
        rustls::Error::General(reason)
    }
}

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(error) = self.inner.verify_client_cert(end_entity, intermediates, now) {
            return Err(self.refuse(end_entity, format!("certificate refused: {error}")));
        }
        match region_of(end_entity) {
            Some(region) if self.peers.contains(&region) => Ok(ClientCertVerified::assertion()),
            Some(region) => Err(self.refuse(end_entity, format!("region {region} is not a peer of this node"))),
            None => Err(self.refuse(end_entity, "certificate names no urn:rhip:region: SAN".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct PeerServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    peer: RegionCode,
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        match region_of(end_entity) {
            Some(region) if region == self.peer => Ok(ServerCertVerified::assertion()),
            Some(region) => Err(rustls::Error::General(format!(
                "peer answered with a certificate for region {region}, expected {}",
                self.peer
            ))),
            None => Err(rustls::Error::General("peer certificate names no urn:rhip:region: SAN".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
