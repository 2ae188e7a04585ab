//! PCR 4, 7 and 11 (SHA-256 bank) predicted from the inputs alone, for the production UKI
//! booted by OVMF as the first boot option (`-nic none`) from a given variable store.
//!
//! Event digests (the TCG PC Client spec as OVMF and systemd-stub follow it), each
//! checked against swtpm on QEMU for the blank, custom and Microsoft stores:
//!
//! - PCR 4: EV_EFI_ACTION [`CALLING_EFI_APPLICATION`], the separator (SHA-256 of four zero
//!   bytes), the UKI's Authenticode hash (EV_EFI_BOOT_SERVICES_APPLICATION); with Secure
//!   Boot off also the Authenticode hash of the `.linux` section, which systemd-stub hands
//!   to `LoadImage`.
//! - PCR 7: EV_EFI_VARIABLE_DRIVER_CONFIG for SecureBoot, PK, KEK, db, dbx (each the SHA-256
//!   of a UEFI_VARIABLE_DATA; an absent variable has data length 0), the separator, then with
//!   Secure Boot on one EV_EFI_VARIABLE_AUTHORITY: UEFI_VARIABLE_DATA of `db` whose data is
//!   the EFI_SIGNATURE_DATA (owner GUID ‖ certificate DER) that verified the image.
//! - PCR 11: systemd-stub's section measurements ([`crate::uki::predict_pcr11`]).
//!
//! QEMU `-kernel` (the `fw,kernel,initramfs,uki` deployments, OVMF's fw_cfg kernel loader)
//! is not a boot option: OVMF loads (and measures) the UKI *before* it signals ReadyToBoot,
//! so PCR 4 there is: UKI Authenticode hash, EV_EFI_ACTION, separator, `.linux` (Secure
//! Boot off; checked with swtpm on the blank store, packaging/tests/it/measurements_qemu.rs).

use crate::varstore::{self, Guid, Store};
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};

/// The EV_EFI_ACTION string OVMF measures into PCR 4 before starting a boot option
/// (measured without a NUL).
pub const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";

/// The variables measured into PCR 7 before the separator, in order.
pub const PCR7_VARIABLES: [&str; 5] = ["SecureBoot", "PK", "KEK", "db", "dbx"];

/// The separator event's digest: SHA-256 of a 32-bit zero.
pub fn separator() -> [u8; 32] {
    Sha256::digest([0u8; 4]).into()
}

/// PCR extend in the SHA-256 bank: `pcr = SHA256(pcr ‖ digest)`.
pub fn extend(pcr: &mut [u8; 32], digest: &[u8; 32]) {
    let mut h = Sha256::new();
    h.update(&pcr[..]);
    h.update(digest);
    *pcr = h.finalize().into();
}

/// The PCR value after extending `digests` in order into a zero PCR.
pub fn replay<'a>(digests: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut pcr = [0u8; 32];
    for d in digests {
        extend(&mut pcr, d);
    }
    pcr
}

/// UEFI_VARIABLE_DATA: VariableName GUID (on-disk, little-endian form), u64
/// UnicodeNameLength (characters, no NUL), u64 VariableDataLength, the UCS-2 name without
/// its NUL, the data.
pub fn uefi_variable_data(guid: &Guid, name: &str, data: &[u8]) -> Vec<u8> {
    let name16: Vec<u16> = name.encode_utf16().collect();
    let mut v = Vec::with_capacity(32 + 2 * name16.len() + data.len());
    v.extend_from_slice(&guid.0);
    v.extend_from_slice(&(name16.len() as u64).to_le_bytes());
    v.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for c in name16 {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The vendor GUID a PCR 7 variable is measured under.
pub fn variable_guid(name: &str) -> Result<Guid> {
    Guid::parse(match name {
        "db" | "dbx" => varstore::IMAGE_SECURITY_GUID,
        _ => varstore::GLOBAL_GUID,
    })
}

fn data_of<'a>(store: &'a Store, name: &str) -> &'a [u8] {
    store.get(name).map(|v| v.data.as_slice()).unwrap_or(&[])
}

/// Whether OVMF enforces Secure Boot with this store: a PK is enrolled and SecureBootEnable
/// is not 0 (OVMF creates it as 1 when absent and a PK exists).
pub fn secure_boot(store: &Store) -> bool {
    let pk = !data_of(store, "PK").is_empty();
    let enable = store
        .get("SecureBootEnable")
        .map(|v| v.data.first().copied().unwrap_or(0) != 0)
        .unwrap_or(true);
    pk && enable
}

/// The data of the `SecureBoot` variable that OVMF's variable driver creates: one byte,
/// 1 with Secure Boot on, else 0. (It is not stored in the variable store.)
pub fn secure_boot_variable(store: &Store) -> Vec<u8> {
    vec![u8::from(secure_boot(store))]
}

/// The PCR 7 configuration events (before the separator), as (name, UEFI_VARIABLE_DATA).
pub fn pcr7_config_events(store: &Store) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in PCR7_VARIABLES {
        let data = if name == "SecureBoot" {
            secure_boot_variable(store)
        } else {
            data_of(store, name).to_vec()
        };
        out.push((
            name.to_string(),
            uefi_variable_data(&variable_guid(name)?, name, &data),
        ));
    }
    Ok(out)
}

/// One EFI_SIGNATURE_DATA found in a signature database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigEntry {
    pub type_guid: Guid,
    pub owner: Guid,
    pub data: Vec<u8>,
}

/// Parses the EFI_SIGNATURE_LISTs of a signature database (db, dbx, …).
pub fn signature_entries(mut data: &[u8]) -> Result<Vec<SigEntry>> {
    let u32_at = |b: &[u8], o: usize| -> Result<usize> {
        let s = b
            .get(o..o + 4)
            .ok_or_else(|| anyhow!("signature list truncated"))?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let guid_at = |b: &[u8], o: usize| -> Result<Guid> {
        let s = b
            .get(o..o + 16)
            .ok_or_else(|| anyhow!("signature list truncated"))?;
        let mut g = [0u8; 16];
        g.copy_from_slice(s);
        Ok(Guid(g))
    };
    let mut out = Vec::new();
    while !data.is_empty() {
        let type_guid = guid_at(data, 0)?;
        let list_size = u32_at(data, 16)?;
        let header_size = u32_at(data, 20)?;
        let sig_size = u32_at(data, 24)?;
        if list_size < 28 + header_size || list_size > data.len() || sig_size < 16 {
            bail!("malformed EFI_SIGNATURE_LIST (size {list_size}, signature size {sig_size})");
        }
        let body = &data[28 + header_size..list_size];
        if !body.len().is_multiple_of(sig_size) {
            bail!("EFI_SIGNATURE_LIST body is not a multiple of its signature size");
        }
        for e in body.chunks(sig_size) {
            out.push(SigEntry {
                type_guid,
                owner: guid_at(e, 0)?,
                data: e[16..].to_vec(),
            });
        }
        data = &data[list_size..];
    }
    Ok(out)
}

/// The db entry (owner ‖ certificate) that verifies the signed image, if any: an X.509
/// entry whose certificate is the image's signer (NekOS signs with the db key itself; chains
/// to a CA in db are not modelled — none of the presets needs them). An image whose
/// Authenticode hash is in dbx is refused.
pub fn authorizing_db_entry(store: &Store, signed_image: &[u8]) -> Result<Option<SigEntry>> {
    let x509 = Guid::parse(varstore::CERT_X509_GUID)?;
    let sha256 = Guid::parse(varstore::CERT_SHA256_GUID)?;
    let hash = crate::authenticode::authenticode_sha256(signed_image)?;
    for e in signature_entries(data_of(store, "dbx")).context("dbx")? {
        if e.type_guid == sha256 && e.data == hash {
            return Ok(None);
        }
    }
    for e in signature_entries(data_of(store, "db")).context("db")? {
        if e.type_guid == x509 && crate::authenticode::verify(signed_image, Some(&e.data)).is_ok() {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// One measured event: its digest and a short description.
#[derive(Clone, Debug)]
pub struct Event {
    pub what: String,
    pub digest: [u8; 32],
}

impl Event {
    fn new(what: impl Into<String>, digest: [u8; 32]) -> Event {
        Event {
            what: what.into(),
            digest,
        }
    }
}

/// What booting the UKI from one store leaves in PCR 4, 7 and 11.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub secure_boot: bool,
    /// `Some(reason)`: OVMF refuses the image (Secure Boot on and no db entry verifies it);
    /// then `pcr4`/`pcr7` hold only the events before the image and `pcr11` is `None`.
    pub refused: Option<String>,
    pub pcr4: Vec<Event>,
    /// PCR 4 when QEMU `-kernel` hands the UKI to OVMF (see the module docs); predicted
    /// only with Secure Boot off (the deployments that boot this way).
    pub pcr4_qemu_kernel: Option<Vec<Event>>,
    pub pcr7: Vec<Event>,
    /// The db entry that verified the image (Secure Boot on).
    pub authority: Option<SigEntry>,
    pub pcr11: Option<[u8; 32]>,
}

/// The Authenticode hash of a UKI's `.linux` section (VirtualSize bytes, as the stub
/// passes them to `LoadImage`).
pub fn linux_authenticode_sha256(uki: &[u8]) -> Result<[u8; 32]> {
    let pe = crate::pe::PeFile::parse(uki)?;
    let s = pe
        .section(".linux")
        .context("the UKI has no .linux section")?;
    crate::authenticode::authenticode_sha256(s.content(uki)).context("the .linux section")
}

/// Predicts PCR 4, 7 and 11 for `signed_uki` (the signed production UKI; with Secure Boot
/// off the unsigned one measures the same) booted from `store`.
pub fn predict(store: &Store, signed_uki: &[u8]) -> Result<Prediction> {
    let sb = secure_boot(store);
    let mut pcr7: Vec<Event> = pcr7_config_events(store)?
        .into_iter()
        .map(|(name, bytes)| {
            Event::new(
                format!("EV_EFI_VARIABLE_DRIVER_CONFIG {name}"),
                Sha256::digest(&bytes).into(),
            )
        })
        .collect();
    pcr7.push(Event::new("EV_SEPARATOR", separator()));
    let mut pcr4 = vec![
        Event::new(
            "EV_EFI_ACTION",
            Sha256::digest(CALLING_EFI_APPLICATION.as_bytes()).into(),
        ),
        Event::new("EV_SEPARATOR", separator()),
    ];
    let authority = if sb {
        authorizing_db_entry(store, signed_uki)?
    } else {
        None
    };
    if sb && authority.is_none() {
        return Ok(Prediction {
            secure_boot: sb,
            refused: Some(
                "Secure Boot is on and no db certificate verifies the NekOS-signed UKI: OVMF \
                 refuses to start it (no PCR 4 image event, no PCR 7 authority event, no PCR 11)"
                    .into(),
            ),
            pcr4,
            pcr4_qemu_kernel: None,
            pcr7,
            authority: None,
            pcr11: None,
        });
    }
    let uki_event = Event::new(
        "EV_EFI_BOOT_SERVICES_APPLICATION UKI",
        crate::authenticode::authenticode_sha256(signed_uki)?,
    );
    let before_boot = pcr4.clone();
    pcr4.push(uki_event.clone());
    let mut pcr4_qemu_kernel = None;
    if let Some(e) = &authority {
        let mut sig = e.owner.0.to_vec();
        sig.extend_from_slice(&e.data);
        let bytes = uefi_variable_data(&variable_guid("db")?, "db", &sig);
        pcr7.push(Event::new(
            "EV_EFI_VARIABLE_AUTHORITY db",
            Sha256::digest(&bytes).into(),
        ));
    } else {
        let linux = Event::new(
            "EV_EFI_BOOT_SERVICES_APPLICATION .linux",
            linux_authenticode_sha256(signed_uki)?,
        );
        pcr4.push(linux.clone());
        let mut q = vec![uki_event];
        q.extend(before_boot);
        q.push(linux);
        pcr4_qemu_kernel = Some(q);
    }
    Ok(Prediction {
        secure_boot: sb,
        refused: None,
        pcr4,
        pcr4_qemu_kernel,
        pcr7,
        authority,
        pcr11: Some(crate::uki::predict_pcr11(signed_uki)?),
    })
}
