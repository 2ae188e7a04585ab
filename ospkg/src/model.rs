//! The JSON documents of an OS package and of stboot's configuration.

use crate::json::{Fields, GoValue, JsonError, as_string, encode_base64, go_object};
use serde_json::Value;

/// Version of `manifest.json` and of the descriptor that stboot accepts.
pub const FORMAT_VERSION: i64 = 1;

/// `manifest.json` inside the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub version: i64,
    pub label: String,
    /// Archive path of the kernel, e.g. `boot/kernel`.
    pub kernel: String,
    /// Archive path of the initramfs, e.g. `boot/initramfs`.
    pub initramfs: String,
    pub cmdline: String,
}

impl Manifest {
    /// A version-1 manifest.
    pub fn new(label: &str, kernel: &str, initramfs: &str, cmdline: &str) -> Self {
        Manifest {
            version: FORMAT_VERSION,
            label: label.to_owned(),
            kernel: kernel.to_owned(),
            initramfs: initramfs.to_owned(),
            cmdline: cmdline.to_owned(),
        }
    }

    /// Go's `json.MarshalIndent(m, "", "  ")`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        go_object(&[
            ("version", GoValue::Int(self.version)),
            ("label", GoValue::Str(&self.label)),
            ("kernel", GoValue::Str(&self.kernel)),
            ("initramfs", GoValue::Str(&self.initramfs)),
            ("cmdline", GoValue::Str(&self.cmdline)),
        ])
    }

    /// Decodes like Go's `json.Unmarshal` (no validation; see [`Manifest::validate`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, JsonError> {
        const W: &str = "manifest";
        let f = Fields::parse(bytes, W)?;
        Ok(Manifest {
            version: f.int("version", W)?,
            label: f.string("label", W)?,
            kernel: f.string("kernel", W)?,
            initramfs: f.string("initramfs", W)?,
            cmdline: f.string("cmdline", W)?,
        })
    }

    /// stboot's checks: version 1, kernel and initramfs paths set.
    pub fn validate(&self) -> Result<(), JsonError> {
        if self.version != FORMAT_VERSION {
            return Err(JsonError(format!(
                "manifest: version {} is not supported (want {FORMAT_VERSION})",
                self.version
            )));
        }
        if self.kernel.is_empty() {
            return Err(JsonError("manifest: kernel path is empty".into()));
        }
        if self.initramfs.is_empty() {
            return Err(JsonError("manifest: initramfs path is empty".into()));
        }
        Ok(())
    }
}

/// The descriptor `<name>.json` next to `<name>.zip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub version: i64,
    pub os_pkg_url: String,
    /// PEM text of each signer's certificate; certificate i goes with signature i.
    pub certificates: Vec<Vec<u8>>,
    /// Ed25519 signatures over SHA-256(zip).
    pub signatures: Vec<[u8; 64]>,
}

impl Descriptor {
    /// An unsigned version-1 descriptor.
    pub fn new(os_pkg_url: &str) -> Self {
        Descriptor {
            version: FORMAT_VERSION,
            os_pkg_url: os_pkg_url.to_owned(),
            certificates: Vec::new(),
            signatures: Vec::new(),
        }
    }

    /// Go's `json.MarshalIndent(d, "", "  ")`; empty lists are `null` (Go's nil slices).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let certs = if self.certificates.is_empty() {
            None
        } else {
            Some(self.certificates.iter().map(|c| encode_base64(c)).collect())
        };
        let sigs = if self.signatures.is_empty() {
            None
        } else {
            Some(self.signatures.iter().map(|s| encode_base64(s)).collect())
        };
        go_object(&[
            ("version", GoValue::Int(self.version)),
            ("os_pkg_url", GoValue::Str(&self.os_pkg_url)),
            ("certificates", GoValue::StrList(certs)),
            ("signatures", GoValue::StrList(sigs)),
        ])
    }

    /// Decodes like Go's `json.Unmarshal`, then checks what this type can hold: every
    /// signature must be 64 bytes (Go would keep a wrong-length one and never count it;
    /// here it is a decoding error).
    pub fn from_json(bytes: &[u8]) -> Result<Self, JsonError> {
        const W: &str = "descriptor";
        let f = Fields::parse(bytes, W)?;
        let raw_sigs = f.bytes_list("signatures", W)?;
        let mut signatures = Vec::with_capacity(raw_sigs.len());
        for (i, s) in raw_sigs.iter().enumerate() {
            let arr: [u8; 64] = s.as_slice().try_into().map_err(|_| {
                JsonError(format!(
                    "descriptor: signature {}: {} bytes, an Ed25519 signature has 64",
                    i + 1,
                    s.len()
                ))
            })?;
            signatures.push(arr);
        }
        Ok(Descriptor {
            version: f.int("version", W)?,
            os_pkg_url: f.string("os_pkg_url", W)?,
            certificates: f.bytes_list("certificates", W)?,
            signatures,
        })
    }

    /// stboot's checks: version 1; a non-empty URL has a scheme; and (stricter than
    /// stboot, which would index past the end) one certificate per signature.
    pub fn validate(&self) -> Result<(), JsonError> {
        if self.version != FORMAT_VERSION {
            return Err(JsonError(format!(
                "descriptor: version {} is not supported (want {FORMAT_VERSION})",
                self.version
            )));
        }
        if !self.os_pkg_url.is_empty() && !has_url_scheme(&self.os_pkg_url) {
            return Err(JsonError(format!(
                "descriptor: os_pkg_url {:?} has no scheme",
                self.os_pkg_url
            )));
        }
        if self.certificates.len() != self.signatures.len() {
            return Err(JsonError(format!(
                "descriptor: {} certificates but {} signatures (they must pair up)",
                self.certificates.len(),
                self.signatures.len()
            )));
        }
        Ok(())
    }
}

/// `scheme:` per RFC 3986 (letter, then letters, digits, `+`, `-`, `.`).
fn has_url_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Where stboot takes the OS package from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMethod {
    Network,
    Initramfs,
}

impl FetchMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMethod::Network => "network",
            FetchMethod::Initramfs => "initramfs",
        }
    }
}

/// `/etc/trust_policy/trust_policy.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Valid signatures needed; stboot refuses a policy with a threshold below 1.
    pub ospkg_signature_threshold: usize,
    pub ospkg_fetch_method: FetchMethod,
}

impl TrustPolicy {
    pub fn to_json_bytes(&self) -> Vec<u8> {
        go_object(&[
            (
                "ospkg_signature_threshold",
                GoValue::Int(i64::try_from(self.ospkg_signature_threshold).unwrap_or(i64::MAX)),
            ),
            (
                "ospkg_fetch_method",
                GoValue::Str(self.ospkg_fetch_method.as_str()),
            ),
        ])
    }

    /// Decodes and validates like stboot: threshold ≥ 1, fetch method `network` or
    /// `initramfs`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JsonError> {
        const W: &str = "trust policy";
        let f = Fields::parse(bytes, W)?;
        let threshold = f.int("ospkg_signature_threshold", W)?;
        if threshold < 1 {
            return Err(JsonError(format!(
                "trust policy: ospkg_signature_threshold must be > 0, got {threshold}"
            )));
        }
        let method = match f.get("ospkg_fetch_method") {
            Some(Value::String(s)) if s == "network" => FetchMethod::Network,
            Some(Value::String(s)) if s == "initramfs" => FetchMethod::Initramfs,
            Some(other) => {
                return Err(JsonError(format!(
                    "trust policy: ospkg_fetch_method {other} is not \"network\" or \"initramfs\""
                )));
            }
            None => {
                return Err(JsonError(
                    "trust policy: ospkg_fetch_method is missing".into(),
                ));
            }
        };
        Ok(TrustPolicy {
            ospkg_signature_threshold: usize::try_from(threshold).unwrap_or(usize::MAX),
            ospkg_fetch_method: method,
        })
    }
}

/// How stboot configures the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Static,
    Dhcp,
}

/// One entry of `network_interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    pub interface_name: String,
    /// `aa:bb:cc:dd:ee:ff`
    pub mac_address: String,
}

/// stboot's host configuration (`/etc/host_configuration.json` or the `STHostConfig`
/// EFI variable). Keys follow stboot's `host.Config`; `version` as in the provisioned
/// configurations of stboot 0.6. Encoding writes every key stboot's decoder wants present,
/// the unused ones (`identity`, `authentication`, `bonding_mode`, `bond_name`) as `null`;
/// decoding ignores them (NekOS uses no `$ID`/`$AUTH` pointer templates or bonding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    pub version: i64,
    pub network_mode: NetworkMode,
    /// CIDR, e.g. `10.0.2.15/24` (required for static).
    pub host_ip: Option<String>,
    pub gateway: Option<String>,
    pub dns: Vec<String>,
    pub network_interfaces: Option<Vec<NetworkInterface>>,
    /// One or more descriptor URLs, comma-separated.
    pub ospkg_pointer: String,
}

impl HostConfig {
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mode = match self.network_mode {
            NetworkMode::Static => "static",
            NetworkMode::Dhcp => "dhcp",
        };
        fn opt(o: &Option<String>) -> GoValue<'_> {
            match o {
                Some(s) => GoValue::Str(s),
                None => GoValue::Null,
            }
        }
        let dns = if self.dns.is_empty() {
            None
        } else {
            Some(self.dns.clone())
        };
        let ifaces = self.network_interfaces.as_ref().map(|list| {
            list.iter()
                .map(|n| {
                    vec![
                        ("interface_name", GoValue::Str(&n.interface_name)),
                        ("mac_address", GoValue::Str(&n.mac_address)),
                    ]
                })
                .collect()
        });
        go_object(&[
            ("version", GoValue::Int(self.version)),
            ("network_mode", GoValue::Str(mode)),
            ("host_ip", opt(&self.host_ip)),
            ("gateway", opt(&self.gateway)),
            ("dns", GoValue::StrList(dns)),
            ("network_interfaces", GoValue::ObjList(ifaces)),
            ("ospkg_pointer", GoValue::Str(&self.ospkg_pointer)),
            ("identity", GoValue::Null),
            ("authentication", GoValue::Null),
            ("bonding_mode", GoValue::Null),
            ("bond_name", GoValue::Null),
        ])
    }

    /// Decodes tolerantly (missing keys are tolerated, unlike stboot's decoder) and checks
    /// what stboot checks: a network mode; host IP and gateway for static; a non-empty
    /// pointer; `network_interfaces` not an empty list. `dns` may be a list or, as in old
    /// provisioned configurations, a single string.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JsonError> {
        const W: &str = "host config";
        let f = Fields::parse(bytes, W)?;
        let network_mode = match f.get("network_mode") {
            Some(Value::String(s)) if s == "static" => NetworkMode::Static,
            Some(Value::String(s)) if s == "dhcp" => NetworkMode::Dhcp,
            Some(other) => {
                return Err(JsonError(format!(
                    "host config: network_mode {other} is not \"static\" or \"dhcp\""
                )));
            }
            None => return Err(JsonError("host config: network_mode must be set".into())),
        };
        let dns = match f.get("dns") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    if !it.is_null() {
                        out.push(as_string(it, &format!("host config: dns[{i}]"))?);
                    }
                }
                out
            }
            Some(other) => {
                return Err(JsonError(format!(
                    "host config: dns: expected a list of addresses, got {}",
                    crate::json::kind(other)
                )));
            }
        };
        let network_interfaces = match f.array("network_interfaces", W)? {
            None => None,
            Some(items) => {
                if items.is_empty() {
                    return Err(JsonError(
                        "host config: network_interfaces is an empty list (use null)".into(),
                    ));
                }
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let ctx = format!("host config: network_interfaces[{i}]");
                    let nf = Fields::from_value(it, &ctx)?;
                    out.push(NetworkInterface {
                        interface_name: nf.string("interface_name", &ctx)?,
                        mac_address: nf.string("mac_address", &ctx)?,
                    });
                }
                Some(out)
            }
        };
        let cfg = HostConfig {
            version: f.int("version", W)?,
            network_mode,
            host_ip: f.opt_string("host_ip", W)?,
            gateway: f.opt_string("gateway", W)?,
            dns,
            network_interfaces,
            ospkg_pointer: f.string("ospkg_pointer", W)?,
        };
        if cfg.network_mode == NetworkMode::Static {
            if cfg.host_ip.is_none() {
                return Err(JsonError("host config: static mode needs host_ip".into()));
            }
            if cfg.gateway.is_none() {
                return Err(JsonError("host config: static mode needs gateway".into()));
            }
        }
        if cfg.ospkg_pointer.is_empty() {
            return Err(JsonError("host config: ospkg_pointer is missing".into()));
        }
        Ok(cfg)
    }

    /// The descriptor URLs of `ospkg_pointer` (comma-separated, trimmed, empty parts dropped).
    pub fn ospkg_urls(&self) -> Vec<String> {
        self.ospkg_pointer
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
