#!/bin/bash
# The edk2 mechanics of the NekOS firmware build. `cargo nekos firmware` (packaging/src/firmware.rs)
# verifies every input by sha256, computes the cache key and calls this script; run by hand only
# for debugging. Inputs come from the environment, all required:
#   NEKOS_EDK2_ORIG      edk2_2025.02.orig.tar.xz (already sha256-checked)
#   NEKOS_EDK2_DEBIAN    edk2_2025.02-8+deb13u1.debian.tar.xz (already sha256-checked)
#   NEKOS_EDK2_PATCHES   directory with the nine QEMU_PV_VARS patches (already sha256-checked)
#   NEKOS_EDK2_TREE      the build directory; always the same path (see firmware/README.md)
#   NEKOS_EDK2_OUT       where the firmware files are written
#   NEKOS_EDK2_JOBS      edk2 build threads
#   NEKOS_EDK2_PLATFORMS space-separated: ovmf-pv-vars amdsev
#   SOURCE_DATE_EPOCH    the release date string inside the firmware is derived from it
set -euo pipefail
: "${NEKOS_EDK2_ORIG:?} ${NEKOS_EDK2_DEBIAN:?} ${NEKOS_EDK2_PATCHES:?} ${NEKOS_EDK2_TREE:?}"
: "${NEKOS_EDK2_OUT:?} ${NEKOS_EDK2_JOBS:?} ${NEKOS_EDK2_PLATFORMS:?} ${SOURCE_DATE_EPOCH:?}"

# Determinism that is not about inputs: BaseTools is Python (dict/set order), the
# tools print and sort by locale, and nothing may see the local time zone.
export PYTHONHASHSEED=0 LC_ALL=C TZ=UTC
umask 022

step() { printf 'firmware: %s\n' "$*" >&2; }

rm -rf "$NEKOS_EDK2_TREE"
mkdir -p "$NEKOS_EDK2_TREE"
cd "$NEKOS_EDK2_TREE"
step "unpacking $(basename "$NEKOS_EDK2_ORIG")"
tar -xf "$NEKOS_EDK2_ORIG" --strip-components=1
tar -xf "$NEKOS_EDK2_DEBIAN"
# Debian's series first (its brotlicompress-disable.diff is required: the orig tarball lacks
# BaseTools' brotli submodule), then the upstream QEMU_PV_VARS commits in file-name order.
# GNU patch keeps edk2's CRLF line endings, which `git am` would strip (0005 then fails).
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    step "debian patch $p"
    patch -p1 --quiet --forward < "debian/patches/$p"
done < debian/patches/series
for p in "$NEKOS_EDK2_PATCHES"/0*.patch; do
    step "pv-vars patch $(basename "$p")"
    patch -p1 --quiet --forward < "$p"
done

set --   # edksetup.sh parses "$@": give it none
step "BaseTools"
export PYTHON_COMMAND=python3
set +u   # edksetup.sh and BaseTools' wrappers read unset variables
# shellcheck disable=SC1091
. ./edksetup.sh > /dev/null
make -s -C BaseTools -j "$NEKOS_EDK2_JOBS" > basetools.log 2>&1 || { tail -40 basetools.log >&2; exit 1; }

release_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%m/%d/%Y)
common=(-a X64 -t GCC5 -b RELEASE -n "$NEKOS_EDK2_JOBS" --no-genfds-multi-thread
        # BaseTools quotes an L-string value itself: pass L<text>\0 without quotes (as Debian does).
        --pcd 'PcdFirmwareVendor=LNekOS build of EDK II\0'
        --pcd 'PcdFirmwareVersionString=Ledk2-2025.02-8+deb13u1+pv-vars\0'
        --pcd "PcdFirmwareReleaseDateString=L$release_date\\0")

mkdir -p "$NEKOS_EDK2_OUT"
for platform in $NEKOS_EDK2_PLATFORMS; do
    case "$platform" in
    ovmf-pv-vars)
        step "OvmfPkgX64 (QEMU_PV_VARS, Secure Boot, TPM2, no SMM)"
        # SMM_REQUIRE stays FALSE: with it the PV variable driver is silently left out.
        build "${common[@]}" -p OvmfPkg/OvmfPkgX64.dsc -D QEMU_PV_VARS=TRUE \
            -D SECURE_BOOT_ENABLE=TRUE -D TPM2_ENABLE=TRUE -D FD_SIZE_4MB -D BUILD_SHELL=FALSE \
            > build-ovmf.log 2>&1 || { tail -60 build-ovmf.log >&2; exit 1; }
        cp Build/OvmfX64/RELEASE_GCC5/FV/OVMF.fd "$NEKOS_EDK2_OUT/OVMF.pv-vars.fd"
        ;;
    amdsev)
        step "AmdSevX64 (SEV-SNP measured direct boot)"
        # The DSC's PREBUILD builds a LUKS-capable grub from source when grub.efi is missing or
        # older than grub.sh/grub.cfg. NekOS boots its kernel directly, never through that
        # grub: an empty grub.efi, newer than both, keeps the grub build out.
        : > OvmfPkg/AmdSev/Grub/grub.efi
        newest=$(stat -c %Y OvmfPkg/AmdSev/Grub/grub.sh OvmfPkg/AmdSev/Grub/grub.cfg | sort -n | tail -1)
        touch -d "@$(( newest + 60 ))" OvmfPkg/AmdSev/Grub/grub.efi
        build "${common[@]}" -p OvmfPkg/AmdSev/AmdSevX64.dsc > build-amdsev.log 2>&1 \
            || { tail -60 build-amdsev.log >&2; exit 1; }
        cp Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd "$NEKOS_EDK2_OUT/OVMF.amdsev.fd"
        ;;
    *) echo "firmware: unknown platform '$platform' (expected ovmf-pv-vars or amdsev)" >&2; exit 2 ;;
    esac
done
step "done"
