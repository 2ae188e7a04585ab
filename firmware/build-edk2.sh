#!/bin/bash
# The edk2 mechanics of the NekOS firmware build. `cargo nekos firmware` (packaging/src/firmware.rs)
# verifies every input by sha256, computes the cache key and calls this script; run by hand only
# for debugging. Inputs come from the environment, all required:
#   NEKOS_EDK2_ORIG      edk2_2025.02.orig.tar.xz (already sha256-checked)
#   NEKOS_EDK2_DEBIAN    edk2_2025.02-8+deb13u1.debian.tar.xz (already sha256-checked)
#   NEKOS_EDK2_PATCHES   directory with the nine QEMU_PV_VARS patches (already sha256-checked)
#   NEKOS_EDK2_TREE      the build directory (any path: the images do not depend on it)
#   NEKOS_EDK2_OUT       where the firmware files and modules.sha256 are written
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

# Path independence. GenFw converts each module's linked ELF (`<module>/DEBUG/<name>.dll`) to
# PE/COFF. In Elf64Convert.c, ScanSections64 reserves a CodeView NB10 debug entry of
# sizeof(EFI_IMAGE_DEBUG_DIRECTORY_ENTRY) + sizeof(NB10 entry) + strlen(mInImageName) + 1 bytes
# after the data section, rounds the end up to the section alignment (CoffAlign), and
# WriteDebug64 copies mInImageName there. mInImageName is GenFw's input argument verbatim, and
# build_rule's [Dynamic-Library-File] rule passes ${src}: the absolute path of the .dll in the
# build tree. The DSCs' RELEASE `GENFW_FLAGS = --zero` then wipes the string and the entry
# (ZeroDebugData), but not the space: the data section's size, SizeOfImage and the .reloc
# offset still follow the path's length, so every module whose rounded size crosses an
# alignment step differs between two trees (33 of 124 did). Run GenFw from the .dll's
# directory with the bare file name instead: the reserved space is then strlen("<name>.dll")+1
# in any tree. GenFw opens mInImageName relative to the working directory; ${dst} is absolute.
# A build-time check below also fails if the tree's path appears in any module or image.
genfw_rule='"$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${src} $(GENFW_FLAGS)'
grep -qF "$genfw_rule" BaseTools/Conf/build_rule.template \
    || { echo "firmware: the GenFw line of BaseTools/Conf/build_rule.template changed; revisit the path fix" >&2; exit 1; }
sed -i 's|"$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${src} $(GENFW_FLAGS)|cd ${s_path} \&\& "$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${s_name} $(GENFW_FLAGS)|' \
    BaseTools/Conf/build_rule.template

set --   # edksetup.sh parses "$@": give it none
step "BaseTools"
export PYTHON_COMMAND=python3
set +u   # edksetup.sh and BaseTools' wrappers read unset variables
# shellcheck disable=SC1091
. ./edksetup.sh > /dev/null
# edksetup copies the template to Conf/build_rule.txt only when that file is missing (a fresh
# tree); make sure the build reads the fixed rule.
grep -qF 'cd ${s_path} && "$(GENFW)"' Conf/build_rule.txt \
    || { echo "firmware: Conf/build_rule.txt lacks the GenFw path fix" >&2; exit 1; }
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
# Per-module hashes, so two builds (or two machines) can be compared module by module
# (firmware.json `modules`; `cargo nekos repro` compares them), and a check that no module and
# no image contains the build tree's path (a __FILE__ or other path string would make the
# bytes depend on the directory again).
step "module hashes"
: > "$NEKOS_EDK2_OUT/modules.sha256"
for platform in $NEKOS_EDK2_PLATFORMS; do
    case "$platform" in ovmf-pv-vars) dir=OvmfX64 ;; amdsev) dir=AmdSev ;; esac
    ( cd "Build/$dir/RELEASE_GCC5" && find X64 -maxdepth 1 -name '*.efi' && find FV -maxdepth 1 \( -name '*.fd' -o -name '*.Fv' \) ) \
        | LC_ALL=C sort | while read -r f; do
            printf '%s  %s\n' "$(sha256sum < "Build/$dir/RELEASE_GCC5/$f" | cut -d' ' -f1)" "$dir/$f"
        done >> "$NEKOS_EDK2_OUT/modules.sha256"
    leaks=$(grep -lF "$PWD" Build/"$dir"/RELEASE_GCC5/X64/*.efi Build/"$dir"/RELEASE_GCC5/FV/*.fd || true)
    if [ -n "$leaks" ]; then
        echo "firmware: the build directory $PWD is written into:" >&2
        echo "$leaks" >&2
        exit 1
    fi
done
step "done"
