// SPDX-License-Identifier: GPL-2.0
/*
 * insn_profile: a QEMU TCG plugin that counts the guest instructions executed per
 * translation block, in phases the guest marks itself.
 *
 *   qemu-system-x86_64 -accel tcg,thread=single -icount shift=0,align=off,sleep=off \
 *       -plugin insn_profile.so,out=FILE,mark=0xffffffff8114f255 ...
 *
 * Every time the guest executes the instruction at address `mark` (scripts/bench passes
 * the entry of the kernel's sync(2) handler, so a `sync` in the guest ends a phase), the
 * plugin appends the phase to FILE and starts the next one:
 *
 *   phase N
 *   <block start address, hex> <instructions in the block> <times executed>
 *   ...
 *
 * A translation block never spans a call or a branch, so each block lies in one function:
 * `bench-report profile` maps the addresses to symbols with the guest's /proc/kallsyms.
 * Counting is an inline add per block executed (no callback), single-threaded TCG only.
 * A block left early by an exception counts as executed whole: a slight overcount.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* One translation of a block; kept for the whole run (QEMU may still execute it). */
struct block {
	uint64_t vaddr;
	uint64_t count;
	uint32_t insns;
};

/* Blocks in chunks that never move, so the inline counters' addresses stay valid. */
#define CHUNK 65536
static struct block **chunks;
static size_t nchunks, nblocks;
static FILE *out;
static uint64_t mark;
static unsigned int phase;

static struct block *new_block(void)
{
	if (nblocks == nchunks * CHUNK) {
		struct block **c = realloc(chunks, (nchunks + 1) * sizeof(*c));

		if (!c)
			abort();
		chunks = c;
		chunks[nchunks] = calloc(CHUNK, sizeof(struct block));
		if (!chunks[nchunks])
			abort();
		nchunks++;
	}
	nblocks++;
	return &chunks[(nblocks - 1) / CHUNK][(nblocks - 1) % CHUNK];
}

static void dump_phase(void)
{
	size_t i;

	fprintf(out, "phase %u\n", phase++);
	for (i = 0; i < nblocks; i++) {
		struct block *b = &chunks[i / CHUNK][i % CHUNK];

		if (b->count) {
			fprintf(out, "%" PRIx64 " %" PRIu32 " %" PRIu64 "\n", b->vaddr, b->insns,
				b->count);
			b->count = 0;
		}
	}
	fflush(out);
}

static void on_mark(unsigned int vcpu, void *udata)
{
	dump_phase();
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;
	struct block *b = new_block();

	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = n;
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, 1);
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

		if (qemu_plugin_insn_vaddr(insn) == mark)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
							       NULL);
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	dump_phase();
	fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
		else if (!strncmp(argv[i], "mark=", 5))
			mark = strtoull(argv[i] + 5, NULL, 0);
		else {
			fprintf(stderr, "insn_profile: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	if (!path || !mark) {
		fprintf(stderr, "insn_profile: needs out=FILE and mark=ADDRESS\n");
		return -1;
	}
	out = fopen(path, "w");
	if (!out) {
		perror(path);
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
