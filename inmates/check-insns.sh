#!/bin/sh
# Refuses inmate images that contain instructions this machine's KVM cannot run:
# software interrupts (int n, int3, into, int1) and any SSE/AVX/x87 instruction
# (the monitor leaves CR4.OSFXSR off). Usage: check-insns.sh [-q] IMAGE.elf...
quiet=0
[ "$1" = "-q" ] && { quiet=1; shift; }
status=0
for elf in "$@"; do
	# Instruction text only (address, tab, mnemonic and operands).
	bad=$(objdump -d --no-show-raw-insn "$elf" |
	      awk -F'\t' '/^ *[0-9a-f]+:\t/ { print $1 "\t" $2 }' |
	      grep -E '	(int|int3|into|int1|icebp)( |$)|%[xyz]mm[0-9]|	(f[a-z0-9]+|emms|ldmxcsr|stmxcsr|fxsave[a-z0-9]*|fxrstor[a-z0-9]*|xsave[a-z]*|xrstor[a-z]*)( |$)')
	if [ -n "$bad" ]; then
		echo "$elf: forbidden instructions:" >&2
		echo "$bad" | head -20 >&2
		status=1
	elif [ $quiet = 0 ]; then
		echo "$elf: no int/int3, no SSE/x87"
	fi
done
exit $status
