#!/usr/bin/env bash
# Boots the akm appliance image in QEMU and checks, from the host, that akm answers KMIP: the
# way an operator would use it. A FAT disk labelled AKM-EXPORT is attached, so the first boot
# copies the admin certificate, key and CA onto it; the host reads them from that disk (mtools)
# and runs `akm key create` and `akm key get` (KMIP Create and Get over mutual TLS) against the
# VM through a forwarded port (127.0.0.1:15696 -> 5696). Then the VM is powered off (ACPI) and
# booted again: the first-boot unit must not run a second time and the key must still be
# there. The image itself is not changed: the VM runs on a throw-away qcow2 overlay.
#
#   deploy/appliance/boot-test.sh [--image appliance-out/akm-appliance.qcow2|.vmdk]
#                                 [--akm target/debug/akm] [--work DIR]
# Needs qemu-system-x86_64, qemu-img, mkfs.vfat (dosfstools), mcopy (mtools) and python3 (to
# talk to the QEMU monitor socket). Runs under TCG (software emulation, works anywhere);
# ACCEL=kvm uses KVM where it works. TIMEOUT (seconds, default 1200) bounds the wait for each
# boot. Prints the timings; exits non-zero on failure.
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
case "$image" in
*.vmdk) format=vmdk ;;
*) format=qcow2 ;;
esac
if [ -z "$akm" ]; then
	akm=$(command -v akm || true)
	[ -n "$akm" ] || akm="${CARGO_TARGET_DIR:-target}/debug/akm"
fi
[ -x "$akm" ] || die "no akm client binary at $akm (cargo build, or --akm PATH)"
for tool in qemu-system-x86_64 qemu-img mkfs.vfat mcopy python3; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install qemu-system-x86 qemu-utils dosfstools mtools)"
done
accel=${ACCEL:-tcg}

rm -rf "$work"
mkdir -p "$work/client"
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
qemu-img create -q -f qcow2 -b "$image" -F "$format" "$work/overlay.qcow2"
truncate -s 32M "$work/export.img"
mkfs.vfat -n AKM-EXPORT "$work/export.img" >/dev/null

qemu=""
trap '[ -z "$qemu" ] || kill "$qemu" 2>/dev/null || true' EXIT

# boot SERIAL-LOG: starts the VM in the background (monitor on a socket, for the power-off).
boot() {
	serial=$1
	start=$(date +%s)
	local cpu=()
	[ "$accel" != kvm ] || cpu=(-cpu host)
	qemu-system-x86_64 -machine q35 -accel "$accel" "${cpu[@]}" -m 1024 -smp 2 \
		-display none -serial "file:$serial" \
		-monitor "unix:$work/monitor.sock,server,nowait" \
		-drive "file=$work/overlay.qcow2,if=virtio,format=qcow2" \
		-drive "file=$work/export.img,if=virtio,format=raw" \
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5696" \
		-device virtio-net-pci,netdev=n0 &
	qemu=$!
	echo "boot-test.sh: QEMU ($accel, $format image) started, serial console in $serial"
}

wait_for() {
	local pattern=$1
	while ! grep -aqE "$pattern" "$serial" 2>/dev/null; do
		kill -0 "$qemu" 2>/dev/null || die "QEMU exited before '$pattern' (see $serial)"
		[ $(($(date +%s) - start)) -lt "$timeout" ] || die "no '$pattern' within ${timeout}s (see $serial)"
		sleep 2
	done
	echo "boot-test.sh: '$pattern' after $(($(date +%s) - start)) s"
}

# The login prompt comes after the first boot (akm-firstboot is ordered before the gettys).
# systemd's "Started akm.service" line is not waited for: the console does not always show
# it once the getty runs. The KMIP calls below are retried until akm answers instead.
wait_started() {
	wait_for 'login:'
}

# KMIP against the VM, retried for up to 3 minutes while akm.service starts (the crypto
# self-tests are slow under TCG).
kmip() {
	local out
	for _ in $(seq 1 90); do
		if out=$("$akm" --config "$work/client.toml" "$@" 2>"$work/client.err"); then
			printf '%s' "$out"
			return 0
		fi
		sleep 2
	done
	die "akm $* against the VM failed: $(cat "$work/client.err")"
}

# ACPI power button: systemd shuts down cleanly, then QEMU exits.
power_off() {
	printf 'system_powerdown\n' | timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
' "$work/monitor.sock" || die "could not reach the QEMU monitor"
	local waited=0
	while kill -0 "$qemu" 2>/dev/null; do
		[ "$waited" -lt 300 ] || die "the VM did not power off within 300 s"
		sleep 2
		waited=$((waited + 2))
	done
	qemu=""
	echo "boot-test.sh: powered off in $waited s"
}

boot "$work/serial-1.log"
wait_for 'akm-firstboot: done'
wait_started

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

created=$(kmip key create --name boot-test --activate --json)
first=$(($(date +%s) - start))
uid=$(printf '%s' "$created" | sed -n 's/.*"uid": *"\([^"]*\)".*/\1/p')
[ -n "$uid" ] || die "no uid in: $created"
got=$(kmip key get "$uid" --material --json)
material=$(printf '%s' "$got" | sed -n 's/.*"material_hex": *"\([0-9a-f]*\)".*/\1/p')
[ ${#material} -eq 64 ] || die "akm key get $uid: $got"
echo "boot-test.sh: first boot: KMIP Create and Get OK (key $uid), ${first} s from power-on"

power_off
boot "$work/serial-2.log"
wait_started
! grep -aq 'akm-firstboot: done' "$serial" || die "the first-boot unit ran again on the second boot"
again=$(kmip key get "$uid" --material --json)
second=$(($(date +%s) - start))
printf '%s' "$again" | grep -q "$material" || die "the key changed across the reboot: $again"
echo "boot-test.sh: second boot: no first-boot run, same key material, ${second} s from power-on"
power_off
echo "boot-test.sh: PASS: accel=$accel, $format image, first boot to KMIP answer ${first} s, second boot ${second} s"
