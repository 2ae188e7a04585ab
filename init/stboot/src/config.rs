//! stboot's inputs from the initramfs: the trust policy directory and the
//! host configuration, read once at the start of the sequence. Parsing of
//! the JSON is nekos-ospkg's; turning the host configuration into network
//! settings and descriptor URLs is here (pure, tested).

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::net::{self, Mode, Settings};
use super::ospkg::{FetchMethod, HostConfig, NetworkMode, TrustPolicy};
use super::url::Url;

pub const TRUST_POLICY: &str = "etc/trust_policy/trust_policy.json";
pub const SIGNING_ROOT: &str = "etc/trust_policy/ospkg_signing_root.pem";
pub const TLS_ROOTS: &str = "etc/trust_policy/tls_roots.pem";
pub const HOST_CONFIG: &str = "etc/host_configuration.json";
/// stboot's fallback location of the host configuration (efivarfs: 4
/// attribute bytes, then the JSON).
pub const HOST_CONFIG_EFIVAR: &str =
    "sys/firmware/efi/efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7";
/// With `ospkg_fetch_method: initramfs`: the package inside the initramfs.
pub const INITRAMFS_DESCRIPTOR: &str = "ospkg/ospkg.json";
pub const INITRAMFS_ZIP: &str = "ospkg/ospkg.zip";

pub struct Inputs {
    pub policy_json: Vec<u8>,
    pub policy: TrustPolicy,
    pub signing_root_pem: Vec<u8>,
    /// DER of each certificate in `ospkg_signing_root.pem`, in file order.
    pub signing_root_ders: Vec<Vec<u8>>,
    pub tls_roots_pem: Vec<u8>,
    pub host_json: Vec<u8>,
    /// Where the host configuration came from (for the console line).
    pub host_source: String,
    /// Network settings and descriptor URLs (network fetch only).
    pub net: Option<Settings>,
    pub pointers: Vec<Url>,
}

fn read(root: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = root.join(rel);
    fs::read(&p).map_err(|e| format!("/{rel}: {e}"))
}

/// Load everything below `root` (`/` in the guest).
pub fn load(root: &Path) -> Result<Inputs, String> {
    let policy_json = read(root, TRUST_POLICY)?;
    let policy =
        TrustPolicy::from_json(&policy_json).map_err(|e| format!("/{TRUST_POLICY}: {e}"))?;
    let signing_root_pem = read(root, SIGNING_ROOT)?;
    let signing_root_ders =
        pem_certificates(&signing_root_pem).map_err(|e| format!("/{SIGNING_ROOT}: {e}"))?;
    let (host_json, host_source) = match read(root, HOST_CONFIG) {
        Ok(b) => (b, format!("/{HOST_CONFIG}")),
        Err(first) => match fs::read(root.join(HOST_CONFIG_EFIVAR)) {
            Ok(v) if v.len() > 4 => (
                v.get(4..).unwrap_or_default().to_vec(),
                "EFI variable STHostConfig".to_string(),
            ),
            _ => {
                return Err(format!(
                    "no host configuration ({first}; no EFI variable STHostConfig)"
                ));
            }
        },
    };
    let host = HostConfig::from_json(&host_json).map_err(|e| format!("{host_source}: {e}"))?;
    let (tls_roots_pem, net, pointers) = match policy.ospkg_fetch_method {
        FetchMethod::Network => {
            let tls = read(root, TLS_ROOTS)?;
            let settings = network_settings(&host).map_err(|e| format!("{host_source}: {e}"))?;
            let pointers =
                descriptor_urls(&host.ospkg_pointer).map_err(|e| format!("{host_source}: {e}"))?;
            (tls, Some(settings), pointers)
        }
        // Measured as stboot does even when unused; absent is fine here.
        FetchMethod::Initramfs => (read(root, TLS_ROOTS).unwrap_or_default(), None, Vec::new()),
    };
    Ok(Inputs {
        policy_json,
        policy,
        signing_root_pem,
        signing_root_ders,
        tls_roots_pem,
        host_json,
        host_source,
        net,
        pointers,
    })
}

/// DER of every CERTIFICATE block; at least one.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for (i, c) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let c = c.map_err(|e| format!("certificate {i}: {e}"))?;
        out.push(c.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err("no CERTIFICATE in the PEM file".to_string());
    }
    Ok(out)
}

/// `ospkg_pointer`: one or more URLs, comma-separated.
pub fn descriptor_urls(pointer: &str) -> Result<Vec<Url>, String> {
    let urls: Vec<Url> = pointer
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Url::parse(s).map_err(|e| format!("ospkg_pointer: {e}")))
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err("ospkg_pointer: no descriptor URL".to_string());
    }
    Ok(urls)
}

fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("{what}: {s:?} is not an IPv4 address"))
}

/// Network settings from the host configuration.
pub fn network_settings(host: &HostConfig) -> Result<Settings, String> {
    let mode = match host.network_mode {
        NetworkMode::Dhcp => Mode::Dhcp,
        NetworkMode::Static => {
            let cidr = host
                .host_ip
                .as_deref()
                .ok_or_else(|| "network_mode static needs host_ip".to_string())?;
            let (a, p) = cidr
                .split_once('/')
                .ok_or_else(|| format!("host_ip: {cidr:?} is not CIDR (a.b.c.d/n)"))?;
            let prefix = p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| format!("host_ip: bad prefix length in {cidr:?}"))?;
            let gateway = match host.gateway.as_deref() {
                Some(g) if !g.trim().is_empty() => Some(ipv4(g, "gateway")?),
                _ => None,
            };
            Mode::Static {
                addr: ipv4(a, "host_ip")?,
                prefix,
                gateway,
            }
        }
    };
    let dns = host
        .dns
        .iter()
        .map(|d| ipv4(d, "dns"))
        .collect::<Result<Vec<_>, _>>()?;
    let interfaces = match &host.network_interfaces {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|i| {
                let name = (!i.interface_name.trim().is_empty())
                    .then(|| i.interface_name.trim().to_string());
                let mac = if i.mac_address.trim().is_empty() {
                    None
                } else {
                    Some(net::parse_mac(&i.mac_address).ok_or_else(|| {
                        format!(
                            "network_interfaces: {:?} is not a MAC address",
                            i.mac_address
                        )
                    })?)
                };
                Ok((name, mac))
            })
            .collect::<Result<Vec<_>, String>>()?,
    };
    Ok(Settings {
        mode,
        dns,
        interfaces,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "network"}"#;
    const HOST_DHCP: &str = r#"{"version":1,"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,
        "network_interfaces":null,"ospkg_pointer":"https://10.0.2.2:8443/nekos.json","identity":null,"authentication":null}"#;
    const HOST_STATIC: &str = r#"{"version":1,"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2",
        "dns":["10.0.2.3"],"network_interfaces":[{"interface_name":"eth0","mac_address":"52:54:00:12:34:56"}],
        "ospkg_pointer":"https://a/x.json, http://b:8000/y.json","identity":null,"authentication":null}"#;
    // A self-signed certificate (any DER will do for the PEM layer).
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";

    fn tree(files: &[(&str, &str)]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("nekos-stboot-cfg-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (rel, text) in files {
            let p = dir.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn loads_a_complete_tree() {
        let root = tree(&[
            (TRUST_POLICY, POLICY),
            (SIGNING_ROOT, PEM),
            (TLS_ROOTS, PEM),
            (HOST_CONFIG, HOST_STATIC),
        ]);
        let i = load(&root).unwrap();
        assert_eq!(i.policy.ospkg_signature_threshold, 1);
        assert_eq!(
            i.signing_root_ders,
            vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]]
        );
        assert_eq!(i.host_source, "/etc/host_configuration.json");
        assert_eq!(i.pointers.len(), 2);
        assert_eq!(i.pointers[1].to_string(), "http://b:8000/y.json");
        let net = i.net.unwrap();
        assert_eq!(
            net.mode,
            Mode::Static {
                addr: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2))
            }
        );
        assert_eq!(net.dns, vec![Ipv4Addr::new(10, 0, 2, 3)]);
        assert_eq!(
            net.interfaces,
            vec![(
                Some("eth0".to_string()),
                Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
            )]
        );
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn missing_files_are_named() {
        let root = tree(&[(TRUST_POLICY, POLICY), (SIGNING_ROOT, PEM)]);
        let e = load(&root).err().unwrap();
        assert!(
            e.starts_with("no host configuration (/etc/host_configuration.json: "),
            "{e}"
        );
        let root2 = tree(&[
            (TRUST_POLICY, POLICY),
            (HOST_CONFIG, HOST_DHCP),
            (SIGNING_ROOT, ""),
        ]);
        let e = load(&root2).err().unwrap();
        assert_eq!(
            e,
            "/etc/trust_policy/ospkg_signing_root.pem: no CERTIFICATE in the PEM file"
        );
        let root3 = tree(&[
            (TRUST_POLICY, POLICY),
            (HOST_CONFIG, HOST_DHCP),
            (SIGNING_ROOT, PEM),
            ("x", ""),
        ]);
        let e = load(&root3).err().unwrap();
        assert!(e.starts_with("/etc/trust_policy/tls_roots.pem: "), "{e}");
        for r in [root, root2, root3] {
            let _ = fs::remove_dir_all(r);
        }
    }

    #[test]
    fn settings_and_pointers() {
        let dhcp = HostConfig::from_json(HOST_DHCP.as_bytes()).unwrap();
        let s = network_settings(&dhcp).unwrap();
        assert_eq!(s.mode, Mode::Dhcp);
        assert!(s.dns.is_empty() && s.interfaces.is_empty());
        let mut h = dhcp.clone();
        h.network_mode = NetworkMode::Static;
        assert_eq!(
            network_settings(&h).unwrap_err(),
            "network_mode static needs host_ip"
        );
        h.host_ip = Some("10.0.2.15".into());
        assert!(network_settings(&h).unwrap_err().contains("not CIDR"));
        h.host_ip = Some("10.0.2.15/33".into());
        assert!(network_settings(&h).unwrap_err().contains("prefix"));
        h.host_ip = Some("10.0.2/24".into());
        assert!(network_settings(&h).unwrap_err().contains("not an IPv4"));
        h.host_ip = Some("10.0.2.15/24".into());
        h.dns = vec!["dns.example".into()];
        assert!(network_settings(&h).unwrap_err().starts_with("dns:"));
        assert_eq!(descriptor_urls(" https://a/b.json ,, ").unwrap().len(), 1);
        assert!(descriptor_urls("").is_err());
        assert!(
            descriptor_urls("https://a/b.json,ftp://c")
                .unwrap_err()
                .contains("ftp")
        );
    }
}
