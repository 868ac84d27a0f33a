//! Securing the connection to the PostgreSQL store, as libpq does: TLS by the URL's `sslmode`
//! (and `sslrootcert`), and the password from `PGPASSWORD` or the password file (`PGPASSFILE`,
//! else `~/.pgpass`) when the URL has none, so that it need not travel in the URL (shell history,
//! process lists, Slurm's job records).
//!
//! `sslmode` (libpq's values): `disable` (never TLS); `allow`, `prefer` (the default: TLS when
//! the server offers it, its certificate unchecked; over a Unix socket there is none); `require`
//! (TLS or no connection; the certificate unchecked); `verify-ca` (TLS with a certificate signed
//! by the root certificate); `verify-full` (that, and the certificate names the host). The root
//! certificate is `sslrootcert=PATH` (PEM), else `~/.postgresql/root.crt`, as in libpq.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use postgres::config::{Host, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub mode: TlsMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The URL's parameters this module reads, which the `postgres` crate does not know (or, for
/// `sslmode`, knows only in part).
const TLS_PARAMS: [&str; 2] = ["sslmode", "sslrootcert"];

/// Splits the TLS settings off a PostgreSQL URL: the URL without them (for `postgres::Config`)
/// and the settings.
pub(crate) fn split_tls(url: &str) -> anyhow::Result<(String, TlsSettings)> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut settings = TlsSettings {
        mode: TlsMode::Prefer,
        root_cert: None,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !TLS_PARAMS.contains(&key) {
            kept.push(pair);
            continue;
        }
        let value = percent_decode(value);
        match key {
            "sslmode" => {
                settings.mode = match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => anyhow::bail!(
                        "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    ),
                }
            }
            _ => settings.root_cert = Some(PathBuf::from(value)),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, settings))
}

/// `%XX` escapes decoded (what a URL's query value may hold); anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `postgres` crate's mode for `settings` (it checks no certificates itself: the connector
/// built by [`connector`] does).
pub(crate) fn ssl_mode(settings: &TlsSettings) -> SslMode {
    match settings.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    }
}

/// The TLS connector for `settings`: it checks the server's certificate as the mode says.
pub(crate) fn connector(settings: &TlsSettings) -> anyhow::Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS for the PostgreSQL store")?;
    let verifier: Arc<dyn ServerCertVerifier> = match settings.mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(Unchecked(provider)),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let path = match &settings.root_cert {
                Some(path) => path.clone(),
                None => default_root_cert().ok_or_else(|| {
                    anyhow::anyhow!(
                        "sslmode=verify-ca and verify-full need the root certificate that signed the server's: give it as sslrootcert=PATH in the URL, or put it in ~/.postgresql/root.crt"
                    )
                })?,
            };
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("reading the root certificate {}: {e}", path.display()))?;
            anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate", path.display());
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("the root certificate {}", path.display()))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("TLS for the PostgreSQL store")?;
            if settings.mode == TlsMode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// libpq's default root certificate, `~/.postgresql/root.crt`, if it exists.
fn default_root_cert() -> Option<PathBuf> {
    let path = Path::new(&std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.is_file().then_some(path)
}

/// `sslmode=require` (and `prefer`): the connection is encrypted, the certificate is not checked
/// (libpq's behaviour without a root certificate). The handshake's signatures still are.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the certificate must be signed by the root certificate, whatever host
/// it names.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Fills in the password when the URL has none, as libpq does: `PGPASSWORD`, else the first
/// matching line of the password file ([`password_file`]). Returns where it came from.
pub(crate) fn fill_password(config: &mut postgres::Config) -> Option<&'static str> {
    if config.get_password().is_some() {
        return None;
    }
    if let Some(password) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
        config.password(password);
        return Some("PGPASSWORD");
    }
    let file = password_file()?;
    let text = std::fs::read_to_string(&file).ok()?;
    let user = config.get_user()?.to_string();
    let database = config.get_dbname().unwrap_or(&user).to_string();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let hosts = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => vec![host.clone()],
        Some(Host::Unix(dir)) => {
            let dir = dir.display().to_string();
            // libpq matches a connection through its default socket directory as `localhost`.
            if ["/var/run/postgresql", "/run/postgresql", "/tmp"].contains(&dir.trim_end_matches('/')) {
                vec![dir, "localhost".into()]
            } else {
                vec![dir]
            }
        }
        None => vec!["localhost".into()],
    };
    let password = hosts
        .iter()
        .find_map(|host| pgpass_lookup(&text, host, port, &database, &user))?;
    config.password(password);
    Some("the password file")
}

/// The password file: `PGPASSFILE`, else `~/.pgpass`; `None` when it does not exist, or (as
/// libpq) when others than its owner may read it (then with a warning).
pub(crate) fn password_file() -> Option<PathBuf> {
    let path = match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => Path::new(&std::env::var_os("HOME")?).join(".pgpass"),
    };
    let metadata = std::fs::metadata(&path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; it is ignored (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    Some(path)
}

/// The password of the first line of a password file (`text`, libpq's format) that matches:
/// `hostname:port:database:username:password`, each of the first four a literal or `*` (any);
/// `\:` and `\\` escape a colon and a backslash; lines starting with `#` are comments.
pub(crate) fn pgpass_lookup(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(pgpass_fields)
        .find(|fields| {
            [host, port.as_str(), database, user]
                .iter()
                .zip(fields)
                .all(|(want, field)| field == "*" || field == want)
        })
        .map(|mut fields| fields.pop().expect("five fields"))
}

/// The five fields of a password file line, unescaped; `None` when it has fewer. Text after a
/// fifth colon belongs to the password, as in libpq.
fn pgpass_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.trim_end_matches('\r').chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_lines_match_as_libpq_matches_them() {
        let text = "# comment\n\
                    db.lab:5432:nas:alice:first\n\
                    *:*:nas:bob:wild\\:card\n\
                    /tmp/sock\\:dir:5433:*:carol:c\\\\d\n\
                    short:line\n\
                    *:*:*:*:fallback:with:colons\n";
        assert_eq!(
            pgpass_lookup(text, "db.lab", 5432, "nas", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "db.lab", 5433, "nas", "alice").as_deref(),
            Some("fallback:with:colons"),
            "the port must match"
        );
        assert_eq!(
            pgpass_lookup(text, "other", 1, "nas", "bob").as_deref(),
            Some("wild:card")
        );
        assert_eq!(
            pgpass_lookup(text, "/tmp/sock:dir", 5433, "any", "carol").as_deref(),
            Some("c\\d")
        );
        assert_eq!(pgpass_lookup("h:1:d:u:p", "h", 1, "d", "x"), None);
        assert_eq!(pgpass_lookup("", "h", 1, "d", "u"), None);
    }

    #[test]
    fn tls_settings_are_split_off_the_url() {
        let (url, tls) =
            split_tls("postgres://nas@db.lab/nas?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap();
        assert_eq!(url, "postgres://nas@db.lab/nas?application_name=x");
        assert_eq!(tls.mode, TlsMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (url, tls) = split_tls("postgresql:///nas?host=/run/pg").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgresql:///nas?host=/run/pg", TlsMode::Prefer)
        );
        assert_eq!(split_tls("postgres://h/d?sslmode=require").unwrap().0, "postgres://h/d");
        assert!(split_tls("postgres://h/d?sslmode=sometimes").is_err());
    }
}
