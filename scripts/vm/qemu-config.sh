# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# The QEMU settings every guest of the project runs with (tests, demo, benchmarks): sourced by
# scripts/vm/run-guest.sh and tests/vm/lib.sh (tests/vm/boot.sh's whole-system boots). Why
# these, and what was measured: scripts/vm/README.md, "Stalls".

# Software emulation (ENVIRONMENT.md: KVM is not usable here).
KC_VM_MACHINE=${KC_VM_MACHINE:-pc}
# Options of every virtio disk.
KC_VM_DRIVE_OPTS=${KC_VM_DRIVE_OPTS:-}
# Kernel arguments of every guest, besides each one's own. sysrq_always_enabled: the stall
# watchdog dumps blocked tasks through SysRq. mitigations=off: the Debian kernel otherwise
# turns every indirect branch into a retpoline (spectre_v2) and flushes buffers on each return
# to user space, which under TCG cost 10-20% of the guest's CPU time (a process-spawning and
# dm-crypt workload: 39-41 s -> 33-35 s of host CPU); the guests run only our tests, and
# nothing they prove depends on those mitigations. norandmaps: no address space layout
# randomisation, so that each process maps the dynamic loader, libc and its program where the
# last one did: QEMU (7.2) keys the code it translates by virtual address, and with a random
# layout every new process had the code it runs translated anew. Measured in a boot-test
# guest: a fork and exec of /bin/true 42 ms of emulated time with it, 5.6 ms without;
# update-initramfs (2200 processes) 152 s -> 59 s; the whole boot 244 s -> 101 s of host CPU.
# Nothing the guests prove depends on where a process's mappings are.
KC_VM_KERNEL_ARGS=${KC_VM_KERNEL_ARGS-sysrq_always_enabled mitigations=off norandmaps}

# vm_qemu_machine_args: the machine, accelerator, CPU and console options, one per line.
# The CPU without ERMS/FSRM: the kernel then clears and copies pages without `rep
# stosb`/`rep movsb`, which TCG emulated so slowly on a busy host that a guest CPU sat in
# clear_page_erms for 45 to 130 s (soft lockups in the boot test's dracut guests, after
# switch-root); without them the dracut-up boot took 150 s of guest time instead of 430.
# And without AVX (and what needs it: AVX2, VAES, VPCLMULQDQ): TCG emulates each AVX
# instruction in a helper call, and with them glibc's string functions, OpenSSL and the
# kernel's crypto and RAID code all take their AVX paths. Measured in a guest: SHA-256 in
# OpenSSL 12 MB/s with AVX, 28 without; `kekcrypt rekey` of 24 MiB 18 s of guest time
# with, 10-12 without; the whole guest (two re-keys) 48 s of host CPU with, 31-35 without.
# AES-NI and SSE stay: what the guests prove (dm-crypt, re-encryption, boots) does not
# depend on the vector width. No default devices (-nodefaults: the IDE CD-ROM, whose probing
# the guests' kernels and udev paid for at every boot, the floppy, the VGA card): the
# serial port on stdio, multiplexed with the monitor as -nographic has it.
vm_qemu_machine_args() {
	printf '%s\n' -machine "$KC_VM_MACHINE" -accel tcg \
		-cpu max,erms=off,fsrm=off,avx=off,avx2=off,vaes=off,vpclmulqdq=off \
		-nodefaults -serial mon:stdio
}

# vm_qemu_drive FILE [OPTS [FORMAT]]: the -drive value of a virtio disk (commas in FILE doubled,
# as QEMU's option syntax wants); OPTS replace KC_VM_DRIVE_OPTS; FORMAT: raw unless given (a
# qcow2 overlay, say).
vm_qemu_drive() {
	local opts=${2-$KC_VM_DRIVE_OPTS}

	printf 'file=%s,if=virtio,format=%s%s\n' "${1//,/,,}" "${3:-raw}" "${opts:+,$opts}"
}
