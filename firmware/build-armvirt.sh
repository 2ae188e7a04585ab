#!/bin/bash
# The edk2 mechanics of the NekOS arm64 firmware: ArmVirtPkg/ArmVirtQemu.dsc (AARCH64) with Secure
# Boot and TPM2, cross-compiled with Debian's gcc-aarch64-linux-gnu from the same pinned edk2
# source as the x86 build (firmware/edk2.lock). `cargo nekos` (packaging/build/src/
# firmware_aarch64.rs) verifies every input by sha256, computes the cache key and calls this
# script; run it by hand only for debugging. A separate script from build-edk2.sh on purpose:
# that script's hash keys the x86 firmware cache and reference-firmware.json.
# Inputs come from the environment, all required:
#   NEKOS_EDK2_ORIG      edk2_2025.02.orig.tar.xz (already sha256-checked)
#   NEKOS_EDK2_DEBIAN    edk2_2025.02-8+deb13u1.debian.tar.xz (already sha256-checked)
#   NEKOS_EDK2_TREE      the build directory (any path: the images do not depend on it)
#   NEKOS_EDK2_OUT       where the firmware files and modules.sha256 are written
#   NEKOS_EDK2_JOBS      edk2 build threads
#   NEKOS_CROSS_PREFIX   the cross compiler prefix (aarch64-linux-gnu-)
#   SOURCE_DATE_EPOCH    the release date string inside the firmware is derived from it
# Outputs in NEKOS_EDK2_OUT: QEMU_EFI.fd (the code, pflash0) and QEMU_VARS.fd (the blank
# variable store template, pflash1), both padded with zeros to the 64 MiB QEMU's `virt` machine
# requires of each flash bank (as Debian's AAVMF_CODE/AAVMF_VARS are), and modules.sha256.
set -euo pipefail
: "${NEKOS_EDK2_ORIG:?} ${NEKOS_EDK2_DEBIAN:?} ${NEKOS_EDK2_TREE:?} ${NEKOS_EDK2_OUT:?}"
: "${NEKOS_EDK2_JOBS:?} ${NEKOS_CROSS_PREFIX:?} ${SOURCE_DATE_EPOCH:?}"

# Determinism that is not about inputs (as build-edk2.sh): BaseTools' dict/set order, the
# tools' locale, no local time zone.
export PYTHONHASHSEED=0 LC_ALL=C TZ=UTC
umask 022

step() { printf 'firmware-aarch64: %s\n' "$*" >&2; }

if ! command -v "${NEKOS_CROSS_PREFIX}gcc" > /dev/null; then
    echo "firmware-aarch64: ${NEKOS_CROSS_PREFIX}gcc not found: the aarch64 firmware needs the" \
         "cross compiler from Debian's gcc-aarch64-linux-gnu (apt-get install gcc-aarch64-linux-gnu)" >&2
    exit 1
fi

rm -rf "$NEKOS_EDK2_TREE"
mkdir -p "$NEKOS_EDK2_TREE"
cd "$NEKOS_EDK2_TREE"
step "unpacking $(basename "$NEKOS_EDK2_ORIG")"
tar -xf "$NEKOS_EDK2_ORIG" --strip-components=1
tar -xf "$NEKOS_EDK2_DEBIAN"
# Debian's series, as for x86 (brotlicompress-disable.diff is required; the rest are Debian's
# security and build fixes). The nine QEMU_PV_VARS commits are not applied: they touch
# OvmfPkg's x86 platforms only, and ArmVirtQemu has no PV-vars support in this source (see
# firmware/README.md, "arm64").
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    step "debian patch $p"
    patch -p1 --quiet --forward < "debian/patches/$p"
done < debian/patches/series

# Path independence: the same GenFw rule change as build-edk2.sh (see the comment there): run
# GenFw in the .dll's directory with the bare file name, so the CodeView space it reserves does
# not follow the build tree's path length.
genfw_rule='"$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${src} $(GENFW_FLAGS)'
grep -qF "$genfw_rule" BaseTools/Conf/build_rule.template \
    || { echo "firmware-aarch64: the GenFw line of BaseTools/Conf/build_rule.template changed; revisit the path fix" >&2; exit 1; }
sed -i 's|"$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${src} $(GENFW_FLAGS)|cd ${s_path} \&\& "$(GENFW)" -e $(MODULE_TYPE) -o ${dst} ${s_name} $(GENFW_FLAGS)|' \
    BaseTools/Conf/build_rule.template

# Build time: GenFw writes the current time into every module's PE header (TimeDateStamp) and
# debug directory unless it runs with --zero. OvmfPkg's DSCs ask for that in RELEASE builds
# (`RELEASE_*_*_GENFW_FLAGS = --zero`); ArmVirtQemu.dsc does not, so add the same line to its
# [BuildOptions] (two builds without it differed in every module).
grep -q '^\[BuildOptions\]' ArmVirtPkg/ArmVirtQemu.dsc \
    || { echo "firmware-aarch64: ArmVirtPkg/ArmVirtQemu.dsc has no [BuildOptions] section; revisit the --zero fix" >&2; exit 1; }
if ! grep -q 'GENFW_FLAGS *= *--zero' ArmVirtPkg/ArmVirtQemu.dsc; then
    sed -i '0,/^\[BuildOptions\]/s//[BuildOptions]\r\n  RELEASE_*_*_GENFW_FLAGS = --zero/' ArmVirtPkg/ArmVirtQemu.dsc
fi

set --   # edksetup.sh parses "$@": give it none
step "BaseTools"
export PYTHON_COMMAND=python3
export GCC5_AARCH64_PREFIX="$NEKOS_CROSS_PREFIX"
set +u   # edksetup.sh and BaseTools' wrappers read unset variables
# shellcheck disable=SC1091
. ./edksetup.sh > /dev/null
grep -qF 'cd ${s_path} && "$(GENFW)"' Conf/build_rule.txt \
    || { echo "firmware-aarch64: Conf/build_rule.txt lacks the GenFw path fix" >&2; exit 1; }
# BaseTools run on the build host (x86_64): built with the host compiler.
make -s -C BaseTools -j "$NEKOS_EDK2_JOBS" > basetools.log 2>&1 || { tail -40 basetools.log >&2; exit 1; }
# GCC5's AARCH64 link line names `-llto-aarch64` (tools_def: an empty library that makes the
# LTO linker plugin pass library flags through); the orig tarball ships only its source, so
# assemble it with the cross compiler as Debian's rules do (an object file under the .a name).
"${NEKOS_CROSS_PREFIX}gcc" -c -fpic BaseTools/Bin/GccLto/liblto-aarch64.s -o BaseTools/Bin/GccLto/liblto-aarch64.a

# Stack cookies: ArmVirt.dsc.inc sets CUSTOM_STACK_CHECK_LIB (DYNAMIC on AARCH64), so modules
# link MdePkg's StackCheckLib, whose __stack_chk_guard starts as the module's
# STACK_COOKIE_VALUE (DXE entry points then replace it with RNDR output when the CPU has it;
# PEIMs keep it). BaseTools' GenC.py picks that value from <build dir>/StackCookieValues64.json
# (and …32.json) by hash(module GUID), and build.py fills those files from `secrets` when they
# are missing: a new random cookie in every module of every build (93 of 100 modules
# differed, 8 bytes in .data). OvmfPkg's x86 DSCs link StackCheckLibNull, so the x86 build
# never met this. Write both files first, with values derived from SOURCE_DATE_EPOCH; build.py
# then keeps them. A secret cookie gains nothing here: any static cookie can be read out of
# the published image, and the runtime (RNDR) one does not come from these files.
grep -qF 'StackCookieValues64.json' BaseTools/Source/Python/build/build.py \
    || { echo "firmware-aarch64: BaseTools no longer reads StackCookieValues64.json; revisit the stack cookie fix" >&2; exit 1; }
bd=Build/ArmVirtQemu-AARCH64/RELEASE_GCC5
mkdir -p "$bd"
python3 - "$bd" "$SOURCE_DATE_EPOCH" <<'EOF'
import hashlib, json, os, sys
out, epoch = sys.argv[1], sys.argv[2]
for bits in (32, 64):
    # The same count and range as build.py's secrets.randbelow(2**bits - 1) lists.
    values = [int.from_bytes(hashlib.sha256(f"nekos-edk2-stack-cookie-{bits}-{epoch}-{i}".encode()).digest()[: bits // 8], "big") % (2**bits - 1)
              for i in range(100)]
    path = os.path.join(out, f"StackCookieValues{bits}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(values, f)
    os.replace(path + ".tmp", path)
EOF
cookies=$(sha256sum "$bd"/StackCookieValues32.json "$bd"/StackCookieValues64.json)

release_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%m/%d/%Y)
step "ArmVirtQemu AARCH64 (Secure Boot, TPM2, no shell)"
# No QEMU_PV_VARS: the variables live in the second flash bank (QEMU_VARS.fd layout).
build -a AARCH64 -t GCC5 -b RELEASE -n "$NEKOS_EDK2_JOBS" --no-genfds-multi-thread \
    -p ArmVirtPkg/ArmVirtQemu.dsc \
    -D SECURE_BOOT_ENABLE=TRUE -D TPM2_ENABLE=TRUE -D BUILD_SHELL=FALSE \
    --pcd 'PcdFirmwareVendor=LNekOS build of EDK II\0' \
    --pcd 'PcdFirmwareVersionString=Ledk2-2025.02-8+deb13u1\0' \
    --pcd "PcdFirmwareReleaseDateString=L$release_date\\0" \
    > build-armvirt.log 2>&1 || { tail -60 build-armvirt.log >&2; exit 1; }

[ "$(sha256sum "$bd"/StackCookieValues32.json "$bd"/StackCookieValues64.json)" = "$cookies" ] \
    || { echo "firmware-aarch64: the build replaced the stack cookie files in $bd" >&2; exit 1; }

fv=$bd
mkdir -p "$NEKOS_EDK2_OUT"
for fd in QEMU_EFI.fd QEMU_VARS.fd; do
    cp "$fv/FV/$fd" "$NEKOS_EDK2_OUT/$fd"
    # QEMU's virt machine maps two 64 MiB flash banks and refuses a file of another size.
    truncate -s 64M "$NEKOS_EDK2_OUT/$fd"
done

step "module hashes"
( cd "$fv" && find AARCH64 -maxdepth 1 -name '*.efi' && find FV -maxdepth 1 \( -name '*.fd' -o -name '*.Fv' \) ) \
    | LC_ALL=C sort | while read -r f; do
        printf '%s  %s\n' "$(sha256sum < "$fv/$f" | cut -d' ' -f1)" "ArmVirtQemu-AARCH64/$f"
    done > "$NEKOS_EDK2_OUT/modules.sha256"
leaks=$(grep -lF "$PWD" "$fv"/AARCH64/*.efi "$fv"/FV/*.fd || true)
if [ -n "$leaks" ]; then
    echo "firmware-aarch64: the build directory $PWD is written into:" >&2
    echo "$leaks" >&2
    exit 1
fi
step "done"
