//! The images the Secure Boot attack deployments hand to the firmware, each made from the
//! built UKIs at boot time and named after the attack it models (deployments.rs, UkiImage).
//! Every one of them must be refused by the project's firmware with the custom store.

use crate::deployments::UkiImage;
use anyhow::{Context, Result, bail};
use nekos_build::artifacts::Manifest;
use nekos_build::keys::{self, KeySigner, Role};
use nekos_formats::pe::PeFile;

/// Seed of the attacker's key hierarchy: a real RSA key and a valid Authenticode signature,
/// only not one the store's db trusts. Fixed, so the attack image is the same every time.
const ATTACKER_SEED: &[u8] = b"nekos-attack: signed by a key that is not in db";

/// The bytes of the UKI a deployment boots.
pub fn uki_bytes(kind: UkiImage, manifest: &Manifest, variant: &str) -> Result<Vec<u8>> {
    let read = |signed: bool| -> Result<Vec<u8>> {
        let path = manifest.uki_path(variant, signed)?;
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    match kind {
        UkiImage::Signed => read(true),
        UkiImage::Unsigned => read(false),
        UkiImage::TamperedInitrd => flip_initrd_byte(&read(true)?),
        UkiImage::WrongKey => sign_with_wrong_key(&read(false)?),
    }
}

/// The signed image with one byte in the middle of `.initrd` inverted: the signature is
/// untouched, the image hash no longer matches it.
pub fn flip_initrd_byte(signed: &[u8]) -> Result<Vec<u8>> {
    let pe = PeFile::parse(signed)?;
    let section = pe
        .section(".initrd")
        .context("the UKI has no .initrd section")?;
    let content_len = section.content(signed).len();
    if content_len == 0 {
        bail!("the UKI's .initrd section is empty");
    }
    let offset = section.pointer_to_raw_data as usize + content_len / 2;
    let mut out = signed.to_vec();
    let byte = out
        .get_mut(offset)
        .context(".initrd lies outside the file")?;
    *byte ^= 0xff;
    Ok(out)
}

/// The unsigned image signed by the attacker's db key.
pub fn sign_with_wrong_key(unsigned: &[u8]) -> Result<Vec<u8>> {
    let hierarchy = keys::generate_hierarchy(Some(ATTACKER_SEED))?;
    let db = hierarchy
        .get(Role::Db)
        .context("the attacker hierarchy has no db key")?;
    let signer = KeySigner::from_keypair(db)?;
    nekos_formats::authenticode::sign(unsigned, &signer)
}
