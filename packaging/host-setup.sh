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

# bookworm-backports: QEMU 10 (uefi-vars-x64 device, used by the firmware work).
# trixie at priority 100: only packages we ask for by name with -t trixie (ovmf, the
# systemd-boot-efi stub, the edk2 orig tarball); nothing is upgraded from it implicitly.
cat > /etc/apt/sources.list.d/nekos.sources.new <<'SRC'
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
cat > /etc/apt/preferences.d/nekos-trixie.new <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
changed=0
for f in /etc/apt/sources.list.d/nekos.sources /etc/apt/preferences.d/nekos-trixie; do
  if ! cmp -s "$f.new" "$f"; then mv "$f.new" "$f"; changed=1; else rm -f "$f.new"; fi
done

# The packages, one per purpose (keep in sync with HOST_TOOLS in packaging/src/host.rs,
# which names the package for each tool it finds missing).
packages=(
  # kernel build (linux-source-6.12 from bookworm-security ships the tarball)
  linux-source-6.12 gcc make bc bison flex libelf-dev libssl-dev cpio xz-utils
  # boots and judges
  python3 binutils
  # UKI judges (packaging/tests/uki.rs): sbverify; python3-pefile for trixie's ukify 257,
  # which is only unpacked (apt-get download + dpkg-deb, like the systemd-boot-efi stub)
  sbsigntool python3-pefile
  # the firmware of the fw,… deployments until the project's own OVMF lands (Secure Boot off)
  ovmf
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
qemu_ok=0
if dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | grep -q '^1:10'; then qemu_ok=1; fi
# osslsigncode: bookworm's 2.5 rejects valid PE signatures (even sbsign's); 2.9 from backports works.
ossl_ok=0
if dpkg-query -W -f='${Version}' osslsigncode 2>/dev/null | grep -q '^2\.9'; then ossl_ok=1; fi

if [ "$changed" = 1 ] || [ ${#missing[@]} -gt 0 ] || [ "$qemu_ok" = 0 ] || [ "$ossl_ok" = 0 ]; then
  apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "$qemu_ok" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports qemu-system-x86
fi
if [ "$ossl_ok" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports osslsigncode
fi
echo "host-setup: ok"
