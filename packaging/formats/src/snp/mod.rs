//! The SEV-SNP launch digest (the 48-byte MEASUREMENT of an attestation report) of a QEMU
//! guest booted from an SEV-capable OVMF with optional `-kernel/-initrd/-append`.
//!
//! The digest is a SHA-384 chain over PAGE_INFO structures ([`gctx`]), in the order QEMU
//! issues SNP_LAUNCH_UPDATE:
//! 1. every 4 KiB page of the firmware image (mapped to end at 4 GiB), as normal pages;
//! 2. the OVMF SEV metadata sections ([`ovmf`]), in order: SNP_SEC_MEMORY and SVSM_CAA as
//!    zero pages, SNP_SECRETS as a secrets page, CPUID as a CPUID page, SNP_KERNEL_HASHES as
//!    a normal page holding the SEV hashes table ([`hashes`]) when a kernel is given, zero
//!    pages otherwise;
//! 3. one VMSA page per vCPU ([`vmsa`]): the BSP at 0xFFFFFFF0, the APs at the SEV-ES reset
//!    block's vector.
//!
//! Unlike the `sev` crate, the kernel command line is hashed exactly as given (plus its NUL),
//! never trimmed — as QEMU does. Only VMM type QEMU is modelled. The judge is PyPI
//! `sev-snp-measure` (`nekos_packaging::snpmeasure::judge`, packaging/tests/snpmeasure.rs).

pub mod gctx;
pub mod hashes;
pub mod ovmf;
pub mod synth;
pub mod vmsa;

pub use gctx::Gctx;
pub use hashes::SevHashes;
pub use ovmf::{Ovmf, Section, SectionType};
pub use vmsa::VcpuType;

use anyhow::{Context, Result, bail};

/// sev-snp-measure's default `--guest-features` (SEV_FEATURES bit 0: SNP active).
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;

/// What the launch digest depends on.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The whole OVMF image (e.g. OVMF.amdsev.fd).
    pub ovmf: &'a [u8],
    /// `-kernel`: only its SHA-256 enters the digest, through the SEV hashes table.
    pub kernel: Option<&'a [u8]>,
    /// `-initrd` (requires `kernel`); absent hashes as empty.
    pub initrd: Option<&'a [u8]>,
    /// `-append` (requires `kernel`), hashed verbatim plus a NUL; absent = "".
    pub append: Option<&'a str>,
    pub vcpus: u32,
    pub vcpu_type: VcpuType,
    /// The VMSA SEV_FEATURES field ([`DEFAULT_GUEST_FEATURES`] for QEMU defaults).
    pub guest_features: u64,
}

/// The SEV-SNP launch digest for VMM type QEMU.
pub fn launch_digest(inp: &Inputs) -> Result<[u8; 48]> {
    let ovmf = Ovmf::parse(inp.ovmf).context("parsing the OVMF image")?;
    let mut g = Gctx::new();
    g.update_normal_pages(ovmf.gpa()?, ovmf.data())
        .context("measuring the OVMF image")?;
    measure_rest(&mut g, &ovmf, inp)?;
    Ok(g.digest())
}

/// The digest after the firmware pages alone (sev-snp-measure's `--mode snp:ovmf-hash`).
pub fn firmware_digest(ovmf_image: &[u8]) -> Result<[u8; 48]> {
    let ovmf = Ovmf::parse(ovmf_image).context("parsing the OVMF image")?;
    let mut g = Gctx::new();
    g.update_normal_pages(ovmf.gpa()?, ovmf.data())?;
    Ok(g.digest())
}

/// [`launch_digest`] continuing from a [`firmware_digest`] of `inp.ovmf` computed earlier
/// (the image is still parsed for its metadata, not re-hashed): for many kernels, cmdlines
/// or vCPU counts on one firmware. A digest of another image gives a wrong result.
pub fn launch_digest_prehashed(inp: &Inputs, firmware_digest: &[u8; 48]) -> Result<[u8; 48]> {
    let ovmf = Ovmf::parse(inp.ovmf).context("parsing the OVMF image")?;
    let mut g = Gctx::with_seed(*firmware_digest);
    measure_rest(&mut g, &ovmf, inp)?;
    Ok(g.digest())
}

fn measure_rest(g: &mut Gctx, ovmf: &Ovmf, inp: &Inputs) -> Result<()> {
    if inp.kernel.is_none() && (inp.initrd.is_some() || inp.append.is_some()) {
        bail!("an initrd or a command line needs a kernel (they are measured only with -kernel)");
    }
    if inp.vcpus == 0 {
        bail!("at least one vCPU is needed");
    }
    let hashes = inp
        .kernel
        .map(|k| SevHashes::new(k, inp.initrd, inp.append));
    if hashes.is_some() && !ovmf.has_section(SectionType::SnpKernelHashes) {
        bail!(
            "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES section \
             (kernel/initrd/cmdline are only measured with an AmdSev OVMF build, e.g. Debian's ovmf-amdsev)"
        );
    }
    for s in ovmf.sections() {
        let gpa = u64::from(s.gpa);
        let size = u64::from(s.size);
        match s.kind {
            SectionType::SnpSecMem | SectionType::SvsmCaa => g.update_zero_pages(gpa, size)?,
            SectionType::SnpSecrets => g.update_secrets_page(gpa),
            SectionType::Cpuid => g.update_cpuid_page(gpa),
            SectionType::SnpKernelHashes => match &hashes {
                Some(h) => {
                    if s.size as usize != gctx::PAGE_SIZE {
                        bail!("SNP_KERNEL_HASHES section is {size:#x} bytes, expected one page");
                    }
                    let off = (ovmf.sev_hashes_table_gpa()? & 0xfff) as usize;
                    g.update_normal_pages(gpa, &h.page(off)?)?;
                }
                None => g.update_zero_pages(gpa, size)?,
            },
        }
    }
    let ap_eip = ovmf.sev_es_reset_eip()?;
    if inp.vcpus > 1 && ap_eip == 0 {
        bail!(
            "the OVMF SEV-ES reset block has AP reset vector 0; cannot start {} vCPUs",
            inp.vcpus
        );
    }
    let sig = inp.vcpu_type.signature();
    let bsp = vmsa::vmsa_page(vmsa::BSP_EIP, inp.guest_features, sig);
    g.update_vmsa_page(&bsp);
    if inp.vcpus > 1 {
        let ap = vmsa::vmsa_page(ap_eip, inp.guest_features, sig);
        for _ in 1..inp.vcpus {
            g.update_vmsa_page(&ap);
        }
    }
    Ok(())
}
