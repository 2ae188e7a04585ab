//! Measured boot: TPM2_PCR_Extend of the SHA-256 bank through the kernel's
//! TPM device, with the command bytes assembled by hand (no TSS).
//!
//! Events, in this order (each is also printed as one console line,
//! `nekos: stboot: pcr-event <pcr> sha256 <hex> <description>`, so a host
//! test can replay them: PCR := SHA-256(PCR || digest), starting from 32
//! zero bytes):
//!
//! | PCR | digest = SHA-256 of | description |
//! | --- | --- | --- |
//! | 12 | the OS package zip (bytes as fetched) | `ospkg zip <url>` |
//! | 12 | the descriptor JSON (bytes as fetched) | `ospkg descriptor <url>` |
//! | 13 | `/etc/trust_policy/trust_policy.json` (file bytes) | `trust policy` |
//! | 13 | each certificate of `ospkg_signing_root.pem`, DER, in file order | `signing root <i> (DER)` |
//! | 13 | `/etc/trust_policy/tls_roots.pem` (file bytes) | `tls roots` |
//! | 14 | `/etc/host_configuration.json` (file bytes) — the host identity | `host configuration` |
//!
//! Only the SHA-256 bank is extended (a command may carry digests for a
//! subset of banks); the other banks of these PCRs keep their reset value.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_CC_PCR_EXTEND: u32 = 0x0000_0182;
const TPM_RS_PW: u32 = 0x4000_0009;
const TPM_ALG_SHA256: u16 = 0x000B;

/// Devices in order of preference: the resource manager first (it is what
/// concurrent users share), the raw device second.
pub const DEVICES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pcr: u32,
    pub digest: [u8; 32],
    pub description: String,
}

impl Event {
    pub fn of(pcr: u32, data: &[u8], description: impl Into<String>) -> Event {
        Event {
            pcr,
            digest: super::sha256(data),
            description: description.into(),
        }
    }

    /// The console line (after `nekos: stboot: `).
    pub fn line(&self) -> String {
        format!(
            "pcr-event {} sha256 {} {}",
            self.pcr,
            super::hex(&self.digest),
            self.description
        )
    }
}

/// TPM2_PCR_Extend(pcr, {SHA-256: digest}) with an empty password session.
pub fn pcr_extend_command(pcr: u32, digest: &[u8; 32]) -> Vec<u8> {
    let mut c = Vec::with_capacity(65);
    c.extend_from_slice(&TPM_ST_SESSIONS.to_be_bytes());
    c.extend_from_slice(&0u32.to_be_bytes()); // size, patched below
    c.extend_from_slice(&TPM_CC_PCR_EXTEND.to_be_bytes());
    c.extend_from_slice(&pcr.to_be_bytes()); // TPMI_DH_PCR handle
    // Authorization area: one TPMS_AUTH_COMMAND for the password session.
    c.extend_from_slice(&9u32.to_be_bytes());
    c.extend_from_slice(&TPM_RS_PW.to_be_bytes());
    c.extend_from_slice(&0u16.to_be_bytes()); // nonce: empty
    c.push(0); // session attributes
    c.extend_from_slice(&0u16.to_be_bytes()); // hmac (password): empty
    // TPML_DIGEST_VALUES
    c.extend_from_slice(&1u32.to_be_bytes());
    c.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    c.extend_from_slice(digest);
    let size = (c.len() as u32).to_be_bytes();
    if let Some(s) = c.get_mut(2..6) {
        s.copy_from_slice(&size);
    }
    c
}

/// Check a response: 10-byte header with a size that matches, code 0.
pub fn check_response(r: &[u8]) -> Result<(), String> {
    if r.len() < 10 {
        return Err(format!("short TPM response ({} bytes)", r.len()));
    }
    let size = r
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    if size as usize != r.len() {
        return Err(format!(
            "TPM response size {size} but {} bytes read",
            r.len()
        ));
    }
    let code = r
        .get(6..10)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(u32::MAX);
    if code != 0 {
        return Err(format!("TPM error 0x{code:03x}"));
    }
    Ok(())
}

/// The first TPM device that exists, if any.
pub fn find_device() -> Option<PathBuf> {
    DEVICES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Extend each event on `device`, in order. Stops at the first failure.
pub fn extend_all(device: &Path, events: &[Event]) -> Result<(), String> {
    let mut tpm = OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| format!("open {}: {e}", device.display()))?;
    for ev in events {
        let cmd = pcr_extend_command(ev.pcr, &ev.digest);
        // The TPM character devices take one whole command per write(2) and
        // return one whole response per read(2).
        tpm.write_all(&cmd)
            .map_err(|e| format!("PCR {} ({}): write: {e}", ev.pcr, ev.description))?;
        let mut resp = [0u8; 4096];
        let n = tpm
            .read(&mut resp)
            .map_err(|e| format!("PCR {} ({}): read: {e}", ev.pcr, ev.description))?;
        check_response(resp.get(..n).unwrap_or_default())
            .map_err(|e| format!("PCR {} ({}): {e}", ev.pcr, ev.description))?;
    }
    Ok(())
}

/// Replay events on zeroed PCRs: what the SHA-256 bank should read afterwards.
#[cfg(test)]
pub fn replay(events: &[Event]) -> std::collections::BTreeMap<u32, [u8; 32]> {
    let mut pcrs = std::collections::BTreeMap::new();
    for ev in events {
        let cur: &mut [u8; 32] = pcrs.entry(ev.pcr).or_insert([0u8; 32]);
        let mut buf = cur.to_vec();
        buf.extend_from_slice(&ev.digest);
        *cur = super::sha256(&buf);
    }
    pcrs
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn extend_command_bytes() {
        let digest = [0xab; 32];
        let c = pcr_extend_command(12, &digest);
        let mut want = vec![
            0x80, 0x02, // TPM_ST_SESSIONS
            0, 0, 0, 65, // commandSize
            0, 0, 0x01, 0x82, // TPM_CC_PCR_Extend
            0, 0, 0, 12, // PCR 12
            0, 0, 0, 9, // authorizationSize
            0x40, 0, 0, 9, // TPM_RS_PW
            0, 0, // nonce
            0, // attributes
            0, 0, // hmac
            0, 0, 0, 1, // count
            0, 0x0b, // TPM_ALG_SHA256
        ];
        want.extend_from_slice(&digest);
        assert_eq!(c, want);
    }

    #[test]
    fn responses() {
        assert!(
            check_response(&[
                0x80, 0x02, 0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0
            ])
            .is_ok()
        );
        assert!(check_response(&[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0]).is_ok());
        assert_eq!(
            check_response(&[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x22]).unwrap_err(),
            "TPM error 0x922"
        );
        assert!(check_response(&[0x80, 0x01, 0, 0, 0, 11, 0, 0, 0, 0]).is_err());
        assert!(check_response(&[0x80, 0x01]).is_err());
    }

    #[test]
    fn event_line_and_replay() {
        let ev = Event::of(12, b"abc", "ospkg zip https://h/p.zip");
        assert_eq!(
            ev.line(),
            "pcr-event 12 sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ospkg zip https://h/p.zip"
        );
        let pcrs = replay(&[ev]);
        // SHA-256(32 zero bytes || SHA-256("abc"))
        let mut buf = vec![0u8; 32];
        buf.extend_from_slice(&crate::sha256(b"abc"));
        assert_eq!(pcrs[&12], crate::sha256(&buf));
    }
}
