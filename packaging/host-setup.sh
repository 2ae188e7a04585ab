#!/usr/bin/env bash
# Host setup for NekOS on Debian 12 (bookworm), run as root.
# The single source of truth for apt sources and host packages: `.ci/run` calls it, and
# `cargo nekos` calls it when it finds a host tool missing and runs as root.
# Idempotent: running it twice changes nothing the second time.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "host-setup: must run as root (or run the apt-get lines below yourself)" >&2
  exit 2
fi

# put_file DEST: writes stdin to DEST only if it differs; sets apt_changed=1 when it did.
apt_changed=0
put_file() {
  local dest=$1
  cat > "$dest.new"
  if cmp -s "$dest.new" "$dest"; then rm -f "$dest.new"; else mv "$dest.new" "$dest"; apt_changed=1; fi
}

# bookworm-backports: QEMU 10 (uefi-vars-x64 device, used by the firmware work).
# trixie at priority 100: only packages we ask for by name with -t trixie (ovmf, the
# systemd-boot-efi stub, the edk2 orig tarball); nothing is upgraded from it implicitly.
put_file /etc/apt/sources.list.d/nekos.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
put_file /etc/apt/preferences.d/nekos-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
changed=$apt_changed

# The packages, one per purpose (keep in sync with HOST_TOOLS in packaging/build/src/host.rs,
# which names the package for each tool it finds missing).
packages=(
  # kernel build (linux-source-6.12 from bookworm-security ships the tarball)
  linux-source-6.12 gcc make bc bison flex libelf-dev libssl-dev cpio xz-utils
  # boots and judges
  python3 binutils
  # musl-gcc: ring (rustls's crypto in init's stage 1) compiles C for the musl target
  musl-tools
  # UKI judges (packaging/tests/it/uki.rs): sbverify; python3-pefile for trixie's ukify 257,
  # which is only unpacked (apt-get download + dpkg-deb, like the systemd-boot-efi stub)
  sbsigntool python3-pefile
  # a PKCS#11 token for the signing tests (packaging/tests/it/pkcs11.rs)
  softhsm2
  # the project's firmware (firmware/build-edk2.sh: edk2 2025.02 from trixie's source tarballs)
  nasm acpica-tools uuid-dev patch
  # Debian's own ArmVirtQemu (AAVMF_CODE.fd): an independent judge of the arm64 variable
  # stores (the arm64 firmware, firmware/build-armvirt.sh, uses gcc-aarch64-linux-gnu below)
  qemu-efi-aarch64
  # Debian's own OVMF: the SMM Secure Boot build as an independent judge of the raw variable
  # store, and the firmware of the Debian-OVMF comparison deployments
  ovmf
  # judges of the ESP disk image (packaging/formats/src/esp.rs): sfdisk, fsck.fat, mtools
  fdisk dosfstools mtools
  # judge of the OS package format (ospkg/tests/it/go_interop.rs): Go's own encoding/json,
  # archive/zip, crypto/x509 and crypto/ed25519 — what stmgr and stboot are built on
  golang-go
  # pinned PyPI judges live in their own venvs (ensure_venv below)
  python3-venv
  # a software TPM for the measured-boot judges (packaging/tests/it/measurements_qemu.rs)
  swtpm swtpm-tools
  # Debian's nginx as the stboot server of the nginx deployments (packaging/lab/src/nginx.rs)
  # and curl, the host-side judge of what it sends (h2 ALPN, gzip, chunked, redirects)
  nginx curl
  # the arm64 kernel's cross compiler (packaging/build/src/kernel.rs, Arch::Aarch64)
  gcc-aarch64-linux-gnu
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
qemu_ok=0
if dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | grep -q '^1:10'; then qemu_ok=1; fi
# qemu-system-aarch64 (the aarch64,… deployments): QEMU 10 from backports like the x86 one.
qemu_arm_ok=0
if dpkg-query -W -f='${Version}' qemu-system-arm 2>/dev/null | grep -q '^1:10'; then qemu_arm_ok=1; fi
# osslsigncode: bookworm's 2.5 rejects valid PE signatures (even sbsign's); 2.9 from backports works.
ossl_ok=0
if dpkg-query -W -f='${Version}' osslsigncode 2>/dev/null | grep -q '^2\.9'; then ossl_ok=1; fi

if [ "$changed" = 1 ] || [ ${#missing[@]} -gt 0 ] || [ "$qemu_ok" = 0 ] || [ "$ossl_ok" = 0 ] || [ "$qemu_arm_ok" = 0 ]; then
  apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "$qemu_ok" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports qemu-system-x86
fi
if [ "$qemu_arm_ok" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports qemu-system-arm
fi
if [ "$ossl_ok" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports osslsigncode
fi
# ensure_venv DIR PACKAGE VERSION [EXTRA PINS…]: a venv at DIR holding PACKAGE==VERSION
# (and the extra pins), created or updated only when the installed version differs.
ensure_venv() {
  local dir=$1 package=$2 version=$3
  shift 3
  if ! "$dir/bin/pip" show "$package" 2>/dev/null | grep -qx "Version: $version"; then
    mkdir -p "$(dirname "$dir")"
    [ -x "$dir/bin/python" ] || /usr/bin/python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$package==$version" "$@"
  fi
}

# --- BEGIN snpmeasure (packaging/src/snpmeasure, packaging/tests/snpmeasure*.rs) ---
# Debian sid at pin priority 1: nothing is ever installed or upgraded from it; it is only a
# source for `apt-get download ovmf-amdsev` (OVMF.amdsev.fd, the SNP launch-digest test
# firmware; version + sha256 pinned in packaging/build/src/snpmeasure/judge.rs).
# The judge: PyPI sev-snp-measure, pinned, in its own venv.
apt_changed=0
put_file /etc/apt/sources.list.d/nekos-sid.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
put_file /etc/apt/preferences.d/nekos-sid <<'PIN'
Package: *
Pin: release n=sid
Pin-Priority: 1
PIN
if [ "$apt_changed" = 1 ] || ! apt-cache show ovmf-amdsev >/dev/null 2>&1; then
  apt-get update -q
fi
ensure_venv /opt/nekos/snp-venv sev-snp-measure 0.0.13 \
  "cryptography==50.0.2" "cffi==2.1.1" "pycparser==3.12"
# --- END snpmeasure ---
# --- BEGIN varstore (packaging/src/varstore, packaging/tests/varstore*.rs) ---
# The judge of generated UEFI variable stores: virt-fw-vars from PyPI virt-firmware, pinned
# to the release whose certificates the microsoft preset uses (packaging/varstore-certs/
# certs.lock names the same version; `cargo nekos lock` moves both), in its own venv.
# PyPI is ahead of Debian here (trixie 24.11, sid 26.9 lack the Option ROM UEFI CA 2023 in
# --enroll-redhat's db). The tests look for /opt/nekos/venv/bin/virt-fw-vars.
ensure_venv /opt/nekos/venv virt-firmware 26.10 "cryptography==50.0.2" "pefile==2024.8.26" \
  "PyYAML==6.0.4" "requests==2.34.2"
# --- END varstore ---
echo "host-setup: ok"
