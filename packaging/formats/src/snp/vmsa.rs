//! The initial VMSA (SEV-ES save area, AMD APM vol. 2 table B-4) of each vCPU as QEMU/KVM
//! hands it to SNP_LAUNCH_UPDATE. Only the fields with non-zero reset values are written.
//! The BSP starts at the reset vector 0xFFFFFFF0; APs start at the SEV-ES reset block's
//! vector (CS base = EIP & 0xFFFF0000, RIP = EIP & 0xFFFF).

use super::gctx::PAGE_SIZE;

/// The vCPU models whose CPUID signature (family/model/stepping, in RDX at reset) QEMU puts
/// into the VMSA: the EPYC entries of QEMU's builtin x86 CPU definitions, as listed by
/// sev-snp-measure 0.0.13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcpuType {
    Epyc,
    EpycV1,
    EpycV2,
    EpycIbpb,
    EpycV3,
    EpycV4,
    EpycRome,
    EpycRomeV1,
    EpycRomeV2,
    EpycRomeV3,
    EpycMilan,
    EpycMilanV1,
    EpycMilanV2,
    EpycGenoa,
    EpycGenoaV1,
    EpycTurin,
}

impl VcpuType {
    pub const ALL: [VcpuType; 16] = [
        VcpuType::Epyc,
        VcpuType::EpycV1,
        VcpuType::EpycV2,
        VcpuType::EpycIbpb,
        VcpuType::EpycV3,
        VcpuType::EpycV4,
        VcpuType::EpycRome,
        VcpuType::EpycRomeV1,
        VcpuType::EpycRomeV2,
        VcpuType::EpycRomeV3,
        VcpuType::EpycMilan,
        VcpuType::EpycMilanV1,
        VcpuType::EpycMilanV2,
        VcpuType::EpycGenoa,
        VcpuType::EpycGenoaV1,
        VcpuType::EpycTurin,
    ];

    /// The QEMU `-cpu` name.
    pub fn name(self) -> &'static str {
        match self {
            VcpuType::Epyc => "EPYC",
            VcpuType::EpycV1 => "EPYC-v1",
            VcpuType::EpycV2 => "EPYC-v2",
            VcpuType::EpycIbpb => "EPYC-IBPB",
            VcpuType::EpycV3 => "EPYC-v3",
            VcpuType::EpycV4 => "EPYC-v4",
            VcpuType::EpycRome => "EPYC-Rome",
            VcpuType::EpycRomeV1 => "EPYC-Rome-v1",
            VcpuType::EpycRomeV2 => "EPYC-Rome-v2",
            VcpuType::EpycRomeV3 => "EPYC-Rome-v3",
            VcpuType::EpycMilan => "EPYC-Milan",
            VcpuType::EpycMilanV1 => "EPYC-Milan-v1",
            VcpuType::EpycMilanV2 => "EPYC-Milan-v2",
            VcpuType::EpycGenoa => "EPYC-Genoa",
            VcpuType::EpycGenoaV1 => "EPYC-Genoa-v1",
            VcpuType::EpycTurin => "EPYC-Turin",
        }
    }

    pub fn from_name(s: &str) -> Option<VcpuType> {
        VcpuType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// (family, model, stepping).
    pub fn fms(self) -> (u32, u32, u32) {
        match self {
            VcpuType::Epyc
            | VcpuType::EpycV1
            | VcpuType::EpycV2
            | VcpuType::EpycIbpb
            | VcpuType::EpycV3
            | VcpuType::EpycV4 => (23, 1, 2),
            VcpuType::EpycRome
            | VcpuType::EpycRomeV1
            | VcpuType::EpycRomeV2
            | VcpuType::EpycRomeV3 => (23, 49, 0),
            VcpuType::EpycMilan | VcpuType::EpycMilanV1 | VcpuType::EpycMilanV2 => (25, 1, 1),
            VcpuType::EpycGenoa | VcpuType::EpycGenoaV1 => (25, 17, 0),
            VcpuType::EpycTurin => (26, 0, 0),
        }
    }

    /// CPUID Fn0000_0001_EAX (AMD CPUID specification #25481).
    pub fn signature(self) -> u32 {
        let (f, m, s) = self.fms();
        cpu_signature(f, m, s)
    }
}

/// CPUID Fn0000_0001_EAX from family, model and stepping.
pub fn cpu_signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (fam_lo, fam_hi) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    (fam_hi << 20)
        | (((model >> 4) & 0xf) << 16)
        | (fam_lo << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// The BSP's reset vector.
pub const BSP_EIP: u32 = 0xFFFF_FFF0;

fn put(p: &mut [u8; PAGE_SIZE], off: usize, v: &[u8]) {
    p[off..off + v.len()].copy_from_slice(v);
}

fn seg(p: &mut [u8; PAGE_SIZE], off: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
    put(p, off, &selector.to_le_bytes());
    put(p, off + 2, &attrib.to_le_bytes());
    put(p, off + 4, &limit.to_le_bytes());
    put(p, off + 8, &base.to_le_bytes());
}

/// The VMSA page of a vCPU starting at `eip`, for VMM type QEMU (KVM's reset state).
pub fn vmsa_page(eip: u32, sev_features: u64, vcpu_sig: u32) -> Box<[u8; PAGE_SIZE]> {
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let p: &mut [u8; PAGE_SIZE] = &mut page;
    seg(p, 0x00, 0, 0x93, 0xffff, 0); // es
    seg(p, 0x10, 0xf000, 0x9b, 0xffff, u64::from(eip & 0xffff_0000)); // cs
    seg(p, 0x20, 0, 0x93, 0xffff, 0); // ss
    seg(p, 0x30, 0, 0x93, 0xffff, 0); // ds
    seg(p, 0x40, 0, 0x93, 0xffff, 0); // fs
    seg(p, 0x50, 0, 0x93, 0xffff, 0); // gs
    seg(p, 0x60, 0, 0, 0xffff, 0); // gdtr
    seg(p, 0x70, 0, 0x82, 0xffff, 0); // ldtr
    seg(p, 0x80, 0, 0, 0xffff, 0); // idtr
    seg(p, 0x90, 0, 0x8b, 0xffff, 0); // tr
    put(p, 0xd0, &0x1000u64.to_le_bytes()); // efer: SVME (set by KVM)
    put(p, 0x148, &0x40u64.to_le_bytes()); // cr4: MCE (set by KVM)
    put(p, 0x158, &0x10u64.to_le_bytes()); // cr0: ET
    put(p, 0x160, &0x400u64.to_le_bytes()); // dr7
    put(p, 0x168, &0xffff_0ff0u64.to_le_bytes()); // dr6
    put(p, 0x170, &0x2u64.to_le_bytes()); // rflags
    put(p, 0x178, &u64::from(eip & 0xffff).to_le_bytes()); // rip
    put(p, 0x268, &0x0007_0406_0007_0406u64.to_le_bytes()); // g_pat (APM vol. 2 A.3)
    put(p, 0x310, &u64::from(vcpu_sig).to_le_bytes()); // rdx: CPUID signature
    put(p, 0x3b0, &sev_features.to_le_bytes()); // sev_features
    put(p, 0x3e8, &0x1u64.to_le_bytes()); // xcr0
    put(p, 0x408, &0x1f80u32.to_le_bytes()); // mxcsr
    put(p, 0x410, &0x37fu16.to_le_bytes()); // x87 fcw
    page
}
