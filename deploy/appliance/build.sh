#!/usr/bin/env bash
# Builds the akm appliance: a bootable Debian bookworm disk image (BIOS, MBR, extlinux) with
# the akm Debian package installed and enabled, DHCP networking, a first-boot unit that gives
# each machine its own identity, KEK and PKI, and a console banner. Writes akm-appliance.qcow2
# (KVM/QEMU) and akm-appliance.vmdk (VMware, streamOptimized) to the output directory.
#
# Run as root, on demand (not in CI):
#   cargo deb --dbgsym
#   deploy/appliance/build.sh --deb target/debian/akm_0.1.0-1_amd64.deb [--out DIR] [--work DIR]
# The FIPS flavour (docs/src/fips.md): `cargo deb --variant fips --dbgsym`, then
#   --deb target/debian/akm-fips_0.1.0-1_amd64.deb (same files and service, package akm-fips).
# Needs: debootstrap, qemu-img, fdisk (sfdisk), e2fsprogs (mkfs.ext4 -d), extlinux and
# syslinux-common, and loop mounts (only for installing extlinux into the file system).
# ROOT_PASSWORD (default "akm") is the console root password, expired so that the first
# login must change it. MIRROR overrides the Debian mirror.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deb=""
out="$PWD/appliance-out"
work="$PWD/appliance-work"
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=bookworm
root_size_mib=2048
label=akm-root

die() {
	echo "build.sh: $*" >&2
	exit 1
}
step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--deb) deb=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	*) die "unknown argument $1 (see the comment at the top)" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, loop mount)"
[ -n "$deb" ] || die "--deb FILE: the akm .deb to install (cargo deb builds one)"
[ -f "$deb" ] || die "$deb: no such file"
for tool in debootstrap qemu-img sfdisk mkfs.ext4 extlinux; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install debootstrap qemu-utils fdisk e2fsprogs extlinux syslinux-common)"
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr" ] || die "$mbr not found (apt-get install syslinux-common)"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
mkdir -p "$out" "$work"
rootfs="$work/rootfs"

# The chroot needs /proc and /dev for the package scripts; unmounted on any exit.
mounted=()
cleanup() {
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[$i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT
bind() {
	mount "$@"
	mounted+=("${*: -1}")
}

bootstrap() {
	step "debootstrap $suite into $rootfs"
	rm -rf "$rootfs"
	debootstrap --variant=minbase \
		--include=linux-image-amd64,initramfs-tools,systemd,systemd-sysv,udev,dbus,kmod,iproute2,adduser,logrotate,init-system-helpers,passwd,login,procps,less \
		"$suite" "$rootfs" "$mirror"
}

install_akm() {
	step "installing $(basename "$deb") (init deferred to the first boot)"
	bind -t proc proc "$rootfs/proc"
	bind --bind /dev "$rootfs/dev"
	cp "$deb" "$rootfs/tmp/akm.deb"
	# AKM_SKIP_INIT: the image must carry no KEK or PKI; each machine makes its own.
	chroot "$rootfs" env AKM_SKIP_INIT=1 DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/akm.deb
	rm -f "$rootfs/tmp/akm.deb"
	[ ! -e "$rootfs/var/lib/akm/data/kek.key" ] || die "the image has a KEK: postinst ignored AKM_SKIP_INIT"
}

configure_system() {
	step "appliance configuration"
	local f="$here/files"
	install -m 0755 "$f/firstboot" "$rootfs/usr/lib/akm-appliance/firstboot" -D
	install -m 0755 "$f/akm-export-admin" "$rootfs/usr/sbin/akm-export-admin"
	install -m 0644 "$f/akm-firstboot.service" "$rootfs/etc/systemd/system/akm-firstboot.service"
	install -m 0644 -D "$f/akm-appliance.conf" "$rootfs/etc/systemd/system/akm.service.d/appliance.conf"
	install -m 0644 "$f/20-dhcp.network" "$rootfs/etc/systemd/network/20-dhcp.network"
	install -m 0644 "$f/issue" "$rootfs/etc/issue"
	install -m 0644 "$f/motd" "$rootfs/etc/motd"
	chroot "$rootfs" systemctl enable akm-firstboot.service systemd-networkd.service akm.service serial-getty@ttyS0.service
	printf 'LABEL=%s / ext4 errors=remount-ro 0 1\n' "$label" >"$rootfs/etc/fstab"
	echo akm-appliance >"$rootfs/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
	echo "root:${ROOT_PASSWORD:-akm}" | chroot "$rootfs" chpasswd
	chroot "$rootfs" chage -d 0 root
	# An empty machine-id: systemd makes a new one on the first boot of every copy.
	: >"$rootfs/etc/machine-id"
	rm -f "$rootfs/var/lib/dbus/machine-id"
	chroot "$rootfs" apt-get clean
	rm -rf "$rootfs"/var/lib/apt/lists/*
}

# extlinux reads /vmlinuz and /initrd.img, the links the kernel package keeps current.
bootloader_config() {
	mkdir -p "$rootfs/boot/extlinux"
	cat >"$rootfs/boot/extlinux/extlinux.conf" <<CONF
DEFAULT akm
TIMEOUT 10
PROMPT 0
SERIAL 0 115200
LABEL akm
	LINUX /vmlinuz
	INITRD /initrd.img
	APPEND root=LABEL=$label ro console=tty0 console=ttyS0,115200n8 net.ifnames=0
CONF
	[ -e "$rootfs/vmlinuz" ] || die "no /vmlinuz in the root file system"
	[ -e "$rootfs/initrd.img" ] || die "no /initrd.img in the root file system"
}

# The disk: an MBR with one bootable partition at 1 MiB holding ext4. The file system is
# made from the directory (mkfs.ext4 -d), so no partition device is needed; only extlinux's
# install needs the file system mounted, through a loop device.
make_disk() {
	step "file system and disk image"
	local part="$work/root.ext4" disk="$work/akm-appliance.raw"
	rm -f "$part" "$disk"
	# 64bit and metadata_csum_seed are features extlinux cannot boot from.
	mkfs.ext4 -q -F -L "$label" -O ^64bit,^metadata_csum_seed -d "$rootfs" "$part" "${root_size_mib}M"
	local mnt="$work/mnt"
	mkdir -p "$mnt"
	mount -o loop "$part" "$mnt"
	mounted+=("$mnt")
	extlinux --install "$mnt/boot/extlinux"
	umount "$mnt"
	unset 'mounted[${#mounted[@]}-1]'
	truncate -s $((root_size_mib + 1))M "$disk"
	printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
	dd if="$part" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
	rm -f "$part"
	step "converting to qcow2 and VMDK"
	qemu-img convert -f raw -O qcow2 -c "$disk" "$out/akm-appliance.qcow2"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$disk" "$out/akm-appliance.vmdk"
	rm -f "$disk"
}

start=$(date +%s)
bootstrap
install_akm
configure_system
bootloader_config
cleanup
mounted=()
make_disk
ls -l "$out"/akm-appliance.qcow2 "$out"/akm-appliance.vmdk
echo "build.sh: done in $(($(date +%s) - start)) s"
