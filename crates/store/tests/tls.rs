//! TLS to the store (#22 item 13): `sslmode=require` encrypts (the server accepts only TLS over
//! TCP here), `verify-ca` and `verify-full` check the server's certificate against
//! `sslrootcert=`, `verify-full` also the host it names. On a throwaway server with `ssl=on` and
//! a certificate signed by a throwaway CA (openssl).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::pg::PgServer;
use nas_store::Store;

fn openssl(server: &PgServer, args: &[&str]) {
    let mut command = server.as_postgres("openssl");
    command.current_dir(server.socket_dir()).args(args);
    let output = command.output().expect("openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn open(url: &str) -> Result<Store, String> {
    Store::open(Path::new(url)).map_err(|e| format!("{e:#}"))
}

#[test]
fn tls_is_required_and_verified_postgres() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let Some(server) = PgServer::start_with(free_port(), |server| {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            server,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=nas-test-ca",
                ],
            ]
            .concat(),
        );
        openssl(
            server,
            &[
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
        );
        std::fs::write(
            server.socket_dir().join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            server,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let mut chmod = server.as_postgres("chmod");
        chmod.args(["600"]).arg(server.socket_dir().join("server.key"));
        assert!(chmod.status().unwrap().success());
        // Over TCP, TLS only.
        std::fs::write(
            server.data_dir().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .unwrap();
        let dir = server.socket_dir().display();
        format!(
            "-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
        )
    }) else {
        return;
    };
    server.psql("postgres", "CREATE DATABASE tls");
    let port = server.port();
    let ca: PathBuf = server.socket_dir().join("ca.crt");
    let url = |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/tls?{query}");

    // Without TLS the server refuses a TCP connection: what works below is encrypted.
    let error = open(&url("127.0.0.1", "sslmode=disable")).err().expect("TLS only");
    assert!(error.contains("no pg_hba.conf entry"), "{error}");
    open(&url("127.0.0.1", "sslmode=require")).unwrap();
    // The default, prefer, takes TLS when offered.
    open(&url("127.0.0.1", "application_name=nas")).unwrap();

    // The certificate, checked against the CA.
    open(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .unwrap();
    open(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .unwrap();
    // The certificate names 127.0.0.1, not localhost: verify-full refuses, verify-ca does not ask.
    let error = open(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .err()
    .expect("the certificate does not name localhost");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    open(&url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .unwrap();
    // Another CA: refused, even by verify-ca.
    let other = server.socket_dir().join("server.crt");
    assert!(open(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", other.display())
    ))
    .is_err());
    // verify-full without a root certificate says where to put one.
    std::env::set_var("HOME", common::temp_dir("home"));
    let error = open(&url("127.0.0.1", "sslmode=verify-full")).err().unwrap();
    assert!(error.contains("sslrootcert"), "{error}");
}
