//! HTTPS through rustls, with and without client certificates, checked with curl (certificates
//! made by the openssl command line for each run).

use std::path::Path;
use std::process::Command;

use crate::support::Live;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`; and a
/// self-signed `other` certificate that the CA did not sign.
pub fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, cn) in [("ca", "/CN=stateseal test CA"), ("other", "/CN=other")] {
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-subj",
                    cn,
                    "-days",
                    "2",
                ],
            ]
            .concat(),
        );
    }
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

/// curl's HTTP status for a GET (0 when the connection or handshake failed).
fn curl(dir: &Path, url: &str, extra: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            "ca.pem",
        ])
        .args(extra)
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

pub fn tls_config(dir: &Path, client_ca: bool) -> String {
    let d = dir.display();
    let ca = if client_ca {
        format!("\n  client_ca_file = \"{d}/ca.pem\"")
    } else {
        String::new()
    };
    format!("tls {{\n  cert_file = \"{d}/server.pem\"\n  key_file  = \"{d}/server.key\"{ca}\n}}\n")
}

#[test]
fn serves_https_and_requires_client_certificates_when_configured() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let d = certs.path();

    let live = Live::start(&tls_config(d, false));
    let https = format!("https://{}/healthz", live.addr);
    assert_eq!(curl(d, &https, &[]), 200);
    assert_eq!(
        curl(d, &format!("http://{}/healthz", live.addr), &[]),
        0,
        "no plain HTTP on the TLS port"
    );
    drop(live);

    let live = Live::start(&tls_config(d, true));
    let https = format!("https://{}/state/x", live.addr);
    assert_eq!(
        curl(d, &https, &[]),
        0,
        "no client certificate: refused in the handshake"
    );
    assert_eq!(
        curl(d, &https, &["--cert", "client.pem", "--key", "client.key"]),
        404,
        "with one: served"
    );
    assert_eq!(
        curl(d, &https, &["--cert", "other.pem", "--key", "other.key"]),
        0,
        "one the CA did not sign: refused"
    );
}

#[test]
fn fail_missing_tls_files_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = stateseal_server::ServerConfig::parse("s.hcl", &tls_config(dir.path(), false), None)
        .unwrap();
    let e = stateseal_server::App::open(&dir.path().join("data"), cfg).unwrap_err();
    assert!(e.to_string().contains("server.pem"), "{e}");
    let e = stateseal_server::ServerConfig::parse("s.hcl", "tls {\n cert_file = \"a\"\n}\n", None)
        .unwrap_err();
    assert!(e.to_string().contains("key_file"), "{e}");
}
