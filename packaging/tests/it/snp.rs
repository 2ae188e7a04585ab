//! `snpcheck` in a real (non-SNP) guest, typed at the serial prompt.

use crate::common::*;

#[test]
fn snpcheck_at_the_prompt_says_snp_is_not_active() {
    let mut vm = boot_to_prompt(
        "snpcheck",
        "microvm,kernel,initramfs,serialonly",
        "production",
        &[],
    );
    let out = vm.run_at_prompt("snpcheck", STEP).or_fail();
    assert!(out.contains("SEV-SNP is not active"), "{out}");
    // Exit code 3 is snpcheck's documented "not SNP".
    assert!(out.contains("nsh: exit status 3"), "{out}");
}
