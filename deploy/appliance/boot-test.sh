#!/usr/bin/env bash
# Boots the akm appliance image in QEMU and checks, from the host, that akm answers KMIP: the
# way an operator would use it. A FAT disk labelled AKM-EXPORT is attached, so the first boot
# copies the admin certificate, key and CA onto it; the host reads them from that disk (mtools)
# and runs `akm key create` and `akm key get` (KMIP Create and Get over mutual TLS) against the
# VM through a forwarded port (127.0.0.1:15696 -> 5696). The image itself is not changed: the
# VM runs on a throw-away qcow2 overlay.
#
#   deploy/appliance/boot-test.sh [--image appliance-out/akm-appliance.qcow2]
#                                 [--akm target/debug/akm] [--work DIR]
# Needs qemu-system-x86_64, qemu-img, mkfs.vfat (dosfstools), mcopy (mtools). Uses KVM when
# /dev/kvm is usable, else TCG (slower; ACCEL=tcg forces it). TIMEOUT (seconds, default 1200)
# bounds the wait for the first boot. Prints the timings and exits non-zero on failure.
set -euo pipefail

image="$PWD/appliance-out/akm-appliance.qcow2"
akm=""
work="$PWD/appliance-boot"
timeout=${TIMEOUT:-1200}
port=15696

die() {
	echo "boot-test.sh: $*" >&2
	exit 1
}
while [ $# -gt 0 ]; do
	case "$1" in
	--image) image=$2; shift 2 ;;
	--akm) akm=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	*) die "unknown argument $1 (see the comment at the top)" ;;
	esac
done
[ -f "$image" ] || die "$image not found (deploy/appliance/build.sh makes it)"
if [ -z "$akm" ]; then
	akm=$(command -v akm || true)
	[ -n "$akm" ] || akm="${CARGO_TARGET_DIR:-target}/debug/akm"
fi
[ -x "$akm" ] || die "no akm client binary at $akm (cargo build, or --akm PATH)"
for tool in qemu-system-x86_64 qemu-img mkfs.vfat mcopy; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install qemu-system-x86 qemu-utils dosfstools mtools)"
done
accel=${ACCEL:-}
if [ -z "$accel" ]; then
	if [ -w /dev/kvm ]; then accel=kvm; else accel=tcg; fi
fi

rm -rf "$work"
mkdir -p "$work/client"
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$work/overlay.qcow2"
truncate -s 32M "$work/export.img"
mkfs.vfat -n AKM-EXPORT "$work/export.img" >/dev/null
serial="$work/serial.log"

start=$(date +%s)
qemu-system-x86_64 -machine q35 -accel "$accel" -m 1024 -smp 2 \
	-display none -monitor none -serial "file:$serial" \
	-drive "file=$work/overlay.qcow2,if=virtio,format=qcow2" \
	-drive "file=$work/export.img,if=virtio,format=raw" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5696" \
	-device virtio-net-pci,netdev=n0 &
qemu=$!
trap 'kill "$qemu" 2>/dev/null || true' EXIT
echo "boot-test.sh: QEMU ($accel) started, serial console in $serial"

wait_for() {
	local pattern=$1
	while ! grep -qE "$pattern" "$serial" 2>/dev/null; do
		kill -0 "$qemu" 2>/dev/null || die "QEMU exited before '$pattern' (see $serial)"
		[ $(($(date +%s) - start)) -lt "$timeout" ] || die "no '$pattern' within ${timeout}s (see $serial)"
		sleep 2
	done
	echo "boot-test.sh: '$pattern' after $(($(date +%s) - start)) s"
}
wait_for 'akm-firstboot: done'
wait_for 'Started akm\.service|Started .*akm KMIP key server'
wait_for 'login:'

# The first boot wrote the admin files to the export disk and unmounted it.
for f in admin.crt admin.key ca.crt; do
	mcopy -n -i "$work/export.img" "::$f" "$work/client/$f"
done
chmod 600 "$work/client/admin.key"
cat >"$work/client.toml" <<CONF
[client]
server = "localhost:$port"
cert = "client/admin.crt"
key = "client/admin.key"
ca = "client/ca.crt"
CONF

# akm.service may still be opening its store when systemd reports it started.
created=""
for _ in $(seq 1 30); do
	if created=$("$akm" --config "$work/client.toml" key create --name boot-test --activate --json 2>"$work/client.err"); then
		break
	fi
	created=""
	sleep 2
done
[ -n "$created" ] || die "akm key create against the VM failed: $(cat "$work/client.err")"
ready=$(($(date +%s) - start))
uid=$(printf '%s' "$created" | sed -n 's/.*"uid": *"\([^"]*\)".*/\1/p')
[ -n "$uid" ] || die "no uid in: $created"
got=$("$akm" --config "$work/client.toml" key get "$uid" --json)
printf '%s' "$got" | grep -q '"boot-test"' || die "akm key get $uid: $got"
echo "boot-test.sh: KMIP Create and Get against the appliance OK (key $uid)"
echo "boot-test.sh: PASS: accel=$accel, first boot to KMIP answer ${ready} s"
