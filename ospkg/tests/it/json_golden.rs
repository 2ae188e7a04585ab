//! Golden JSON vectors. The literal strings are written by hand from Go's encoder rules
//! (`json.MarshalIndent(v, "", "  ")`: two-space indent, `": "`, one element per line,
//! nil slices as `null`, `<` `>` `&` U+2028 U+2029 as `\u003c` `\u003e` `\u0026`
//! `\u2028` `\u2029`, standard padded base64 for `[]byte`). The files in
//! `tests/fixtures/go-*.json` were produced by Go's own encoding/json from the program in
//! `tests/fixtures/go-golden.go.txt`, as an independent cross-check.

use nekos_ospkg::*;

const CERT1: &[u8] = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const CERT2: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB/w==\n-----END CERTIFICATE-----\n";

fn desc(url: &str, n: usize) -> Descriptor {
    let mut d = Descriptor::new(url);
    let certs = [CERT1, CERT2];
    let sigs = [[0u8; 64], [0xffu8; 64]];
    for i in 0..n {
        d.certificates.push(certs[i].to_vec());
        d.signatures.push(sigs[i]);
    }
    d
}

#[test]
fn descriptor_zero_signatures_by_hand() {
    let d = desc("http://10.0.2.2:8000/nekos.zip", 0);
    let want = "{\n  \"version\": 1,\n  \"os_pkg_url\": \"http://10.0.2.2:8000/nekos.zip\",\n  \"certificates\": null,\n  \"signatures\": null\n}";
    assert_eq!(String::from_utf8(d.to_json_bytes()).unwrap(), want);
}

#[test]
fn descriptor_one_signature_by_hand() {
    let d = desc("http://10.0.2.2:8000/nekos.zip", 1);
    // base64 of CERT1's PEM text; 64 zero bytes = 21 × "AAAA" + "AA==".
    let cert_b64 =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQUEKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
    let sig_b64 = format!("{}AA==", "AAAA".repeat(21));
    let want = format!(
        "{{\n  \"version\": 1,\n  \"os_pkg_url\": \"http://10.0.2.2:8000/nekos.zip\",\n  \"certificates\": [\n    \"{cert_b64}\"\n  ],\n  \"signatures\": [\n    \"{sig_b64}\"\n  ]\n}}"
    );
    assert_eq!(String::from_utf8(d.to_json_bytes()).unwrap(), want);
}

#[test]
fn descriptor_two_signatures_by_hand() {
    let d = desc("https://example.org/a?b=1&c=<2>", 2);
    let j = String::from_utf8(d.to_json_bytes()).unwrap();
    assert!(j.contains("\"os_pkg_url\": \"https://example.org/a?b=1\\u0026c=\\u003c2\\u003e\",\n"));
    // Standard alphabet ('/', not '_'), padded: 64 × 0xff.
    let ff = format!("{}/w==", "////".repeat(21));
    assert!(j.ends_with(&format!(
        "  \"signatures\": [\n    \"{}AA==\",\n    \"{ff}\"\n  ]\n}}",
        "AAAA".repeat(21)
    )));
    assert!(j.contains("\"certificates\": [\n    \"LS0t"));
}

#[test]
fn descriptors_match_go() {
    let cases = [
        (
            desc("http://10.0.2.2:8000/nekos.zip", 0),
            &include_bytes!("../fixtures/go-desc0.json")[..],
        ),
        (
            desc("http://10.0.2.2:8000/nekos.zip", 1),
            &include_bytes!("../fixtures/go-desc1.json")[..],
        ),
        (
            desc("https://example.org/a?b=1&c=<2>", 2),
            &include_bytes!("../fixtures/go-desc2.json")[..],
        ),
    ];
    for (d, go) in cases {
        assert_eq!(
            String::from_utf8_lossy(&d.to_json_bytes()),
            String::from_utf8_lossy(go)
        );
        assert_eq!(Descriptor::from_json(go).unwrap(), d);
    }
}

#[test]
fn manifest_escaping_by_hand() {
    let m = Manifest::new(
        "a<b>&c\u{2028}d\u{2029}",
        "boot/kernel",
        "boot/initramfs",
        "x=\"1\"",
    );
    let want = "{\n  \"version\": 1,\n  \"label\": \"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029\",\n  \"kernel\": \"boot/kernel\",\n  \"initramfs\": \"boot/initramfs\",\n  \"cmdline\": \"x=\\\"1\\\"\"\n}";
    assert_eq!(String::from_utf8(m.to_json_bytes()).unwrap(), want);
    assert_eq!(Manifest::from_json(want.as_bytes()).unwrap(), m);
}

#[test]
fn manifest_matches_go() {
    // Go 1.19 made the fixture; the label avoids \b and \f, which Go ≥ 1.22 (stmgr v0.6.6
    // needs Go 1.23) writes as "\b" "\f" and older Go as \u0008 \u000c. This crate writes
    // the Go ≥ 1.22 form.
    let m = Manifest::new(
        "NekOS <cats> & \"dogs\"\u{2028}\u{2029} é 😀 \\ \t\n\r\u{1}\u{1f}\u{7f}",
        "boot/kernel",
        "boot/initramfs.cpio",
        "console=ttyS0 quiet",
    );
    let go = include_bytes!("../fixtures/go-manifest.json");
    assert_eq!(
        String::from_utf8_lossy(&m.to_json_bytes()),
        String::from_utf8_lossy(go)
    );
    assert_eq!(Manifest::from_json(go).unwrap(), m);
    let b = Manifest::new("\u{8}\u{c}", "k", "i", "").to_json_bytes();
    assert!(
        String::from_utf8(b)
            .unwrap()
            .contains("\"label\": \"\\b\\f\"")
    );
}

#[test]
fn trust_policy_matches_go() {
    let p = TrustPolicy {
        ospkg_signature_threshold: 2,
        ospkg_fetch_method: FetchMethod::Network,
    };
    let go = include_bytes!("../fixtures/go-policy.json");
    assert_eq!(p.to_json_bytes(), go.to_vec());
    assert_eq!(TrustPolicy::from_json(go).unwrap(), p);
    let e = TrustPolicy::from_json(
        br#"{"ospkg_signature_threshold": 0, "ospkg_fetch_method": "network"}"#,
    );
    assert!(e.unwrap_err().to_string().contains("must be > 0"));
    let e =
        TrustPolicy::from_json(br#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "usb"}"#);
    assert!(e.is_err());
    let p = TrustPolicy::from_json(
        br#"{"OSPKG_SIGNATURE_THRESHOLD": 1, "ospkg_fetch_method": "initramfs", "x": 1}"#,
    )
    .unwrap();
    assert_eq!(p.ospkg_fetch_method, FetchMethod::Initramfs);
}

#[test]
fn tolerant_decoding() {
    // Different key case, unknown fields, [] vs null, later duplicate wins (as Go: the
    // fixture program prints `"v" 1` for the same input).
    let j = br#"{"VERSION": 1, "Os_Pkg_Url": "u", "certificates": [], "signatures": null, "extra": {"x": [1,2]}, "os_pkg_url": "v"}"#;
    let d = Descriptor::from_json(j).unwrap();
    assert_eq!(d.version, 1);
    assert_eq!(d.os_pkg_url, "v");
    assert!(d.certificates.is_empty() && d.signatures.is_empty());
    assert_eq!(d.to_json_bytes(), desc("v", 0).to_json_bytes());
    // Missing fields take zero values; whitespace and a trailing newline are fine.
    let d = Descriptor::from_json(b"  {\"version\":1}\n").unwrap();
    assert_eq!(d, desc("", 0));
    // base64 with embedded newlines (Go ignores \r \n).
    let d = Descriptor::from_json(
        b"{\"version\":1,\"certificates\":[\"QU\\nJD\"],\"signatures\":[null]}",
    );
    // null signature element is 0 bytes, which is not an Ed25519 signature.
    assert!(d.is_err());
    let d = Descriptor::from_json(b"{\"version\":1,\"certificates\":[\"QU\\nJD\"]}").unwrap();
    assert_eq!(d.certificates, vec![b"ABC".to_vec()]);
    // Manifest with unknown fields and odd case.
    let m = Manifest::from_json(br#"{"Version":1,"LABEL":"l","Kernel":"boot/k","initRAMfs":"boot/i","cmdline":null,"new":true}"#).unwrap();
    assert_eq!(m, Manifest::new("l", "boot/k", "boot/i", ""));
    // Type errors are errors.
    assert!(Manifest::from_json(br#"{"version":"1"}"#).is_err());
    assert!(Manifest::from_json(br#"{"label":5}"#).is_err());
    assert!(Descriptor::from_json(br#"{"certificates":{}}"#).is_err());
    assert!(Descriptor::from_json(b"{} trailing").is_err());
}

#[test]
fn host_config_round_trip() {
    let c = HostConfig {
        version: 1,
        network_mode: NetworkMode::Static,
        host_ip: Some("10.0.2.15/24".into()),
        gateway: Some("10.0.2.2".into()),
        dns: vec!["10.0.2.3".into()],
        network_interfaces: Some(vec![NetworkInterface {
            interface_name: "eth0".into(),
            mac_address: "52:54:00:12:34:56".into(),
        }]),
        ospkg_pointer: "http://10.0.2.2:8000/nekos.json".into(),
    };
    let want = r#"{
  "version": 1,
  "network_mode": "static",
  "host_ip": "10.0.2.15/24",
  "gateway": "10.0.2.2",
  "dns": [
    "10.0.2.3"
  ],
  "network_interfaces": [
    {
      "interface_name": "eth0",
      "mac_address": "52:54:00:12:34:56"
    }
  ],
  "ospkg_pointer": "http://10.0.2.2:8000/nekos.json",
  "identity": null,
  "authentication": null,
  "bonding_mode": null,
  "bond_name": null
}"#;
    assert_eq!(String::from_utf8(c.to_json_bytes()).unwrap(), want);
    assert_eq!(HostConfig::from_json(want.as_bytes()).unwrap(), c);
    // DHCP, null interfaces, old-style single-string dns, several pointers.
    let d = HostConfig::from_json(br#"{"network_mode":"dhcp","dns":"9.9.9.9","network_interfaces":null,"ospkg_pointer":"http://a/x.json, http://b/y.json","timestamp":1}"#).unwrap();
    assert_eq!(d.network_mode, NetworkMode::Dhcp);
    assert_eq!(d.dns, vec!["9.9.9.9".to_string()]);
    assert_eq!(
        d.ospkg_urls(),
        vec!["http://a/x.json".to_string(), "http://b/y.json".to_string()]
    );
    assert!(
        d.to_json_bytes()
            .windows(26)
            .any(|w| w == b"\"network_interfaces\": null")
    );
    // stboot's checks.
    assert!(HostConfig::from_json(br#"{"network_mode":"static","ospkg_pointer":"x"}"#).is_err());
    assert!(HostConfig::from_json(br#"{"network_mode":"dhcp"}"#).is_err());
    assert!(
        HostConfig::from_json(
            br#"{"network_mode":"dhcp","ospkg_pointer":"x","network_interfaces":[]}"#
        )
        .is_err()
    );
    assert!(HostConfig::from_json(br#"{"ospkg_pointer":"x"}"#).is_err());
}

#[test]
fn go_escaper_edge_cases() {
    let mut s = String::new();
    push_go_string(&mut s, "");
    assert_eq!(s, "\"\"");
    let mut s = String::new();
    push_go_string(&mut s, "\u{2027}\u{202a}/'");
    assert_eq!(s, "\"\u{2027}\u{202a}/'\"");
}
