# Metadata writes that fail: parts of the spare region fail writes (dm-flakey error_writes
# segments of a dm table over the spare disk, switched live). Nothing acknowledged is lost,
# nothing undone comes back after a reload, the load never panics (defects 3, 4, 8, 12).
# Spare: 16 MiB, 4096 blocks; copy i at block floor(i * 4096 / 5), laid out as superblock
# (8 sectors), two checkpoint slots (128 sectors each), journal (32 sectors).
load_module
disk=$(make_disk disk 64)
sparedisk=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$sparedisk")
main=$(bad_main badmain "$disk" 100 110 120 130 140 150 160 170)
echo "0 $slen linear $sparedisk 0" | dmsetup create sp
table="0 $len remap $main /dev/mapper/sp 0 $slen"
for b in 100 110 120 130 140 150 160 170 1000 1500; do
	dd if=/dev/urandom of=/tmp/dmr-b$b bs=4096 count=1 2>/dev/null
	dd if=/dev/urandom of=/tmp/dmr-c$b bs=4096 count=1 2>/dev/null
done

sb_area() { echo "$(copy_sector "$slen" "$1"):8"; }
slot_areas() { echo "$(($(copy_sector "$slen" "$1") + 8)):256"; }
journal_area() { echo "$(($(copy_sector "$slen" "$1") + 264)):32"; }
# spare_faults RANGE...: sectors START:COUNT of the spare fail writes from now on.
spare_faults() {
	_pos=0
	: >/tmp/dmr-sptable
	for _r in $(printf '%s\n' "$@" | sort -t: -k1,1n); do
		_s=${_r%%:*}
		_c=${_r#*:}
		[ "$_s" -gt "$_pos" ] && echo "$_pos $((_s - _pos)) linear $sparedisk $_pos" >>/tmp/dmr-sptable
		echo "$_s $_c flakey $sparedisk $_s 0 1 1 error_writes" >>/tmp/dmr-sptable
		_pos=$((_s + _c))
	done
	[ "$_pos" -lt "$slen" ] && echo "$_pos $((slen - _pos)) linear $sparedisk $_pos" >>/tmp/dmr-sptable
	dmsetup suspend sp
	dmsetup reload sp /tmp/dmr-sptable
	dmsetup resume sp
}
fresh() {
	spare_faults
	dd if=/dev/zero of=/dev/mapper/sp bs=1M count=16 oflag=direct 2>/dev/null
	dmsetup create r0 --table "$table"
}
reload_healthy() {
	dmsetup remove r0
	spare_faults
	dmsetup create r0 --table "$table" || fail "$1: the table does not load"
}
check_block() { # NAME BLOCK FILE: block BLOCK is remapped and holds FILE
	dmsetup message r0 0 query "$2" | grep -q "^$2 spare " || fail "$1: block $2 is $(dmsetup message r0 0 query "$2")"
	block_of /dev/mapper/r0 "$2"
	cmp -s /tmp/dmr-blk "$3" || fail "$1: block $2 holds other data"
}
# case_wanted NAME: DMR_TEST_META_CASES (names separated by '.') selects cases; all by
# default.
case_wanted() {
	[ -z "${DMR_TEST_META_CASES:-}" ] && return 0
	case ".$DMR_TEST_META_CASES." in *".$1."*) return 0 ;; esac
	return 1
}
all_metadata_but_journal_0() {
	for i in 0 1 2 3 4; do
		sb_area $i
		slot_areas $i
		[ "$i" = 0 ] || journal_area $i
	done
}

# One copy's journal fails: commits keep their quorum.
if case_wanted one_journal; then
	fresh
	spare_faults "$(journal_area 2)"
	for b in 100 110 120 130; do write_block /dev/mapper/r0 $b /tmp/dmr-b$b; done
	echo "one journal failing: $(dmsetup status r0)"
	reload_healthy one_journal
	for b in 100 110 120 130; do check_block one_journal $b /tmp/dmr-b$b; done
	[ "$(status_meta r0 1)" = 5/5 ] || fail "one_journal: copies not repaired: $(dmsetup status r0)"
	dmsetup remove r0
	result PASS metadata_faults:one_journal
fi

# One copy's superblock and another's journal fail: the append that copy 1 misses is
# followed by a checkpoint, which cannot switch copy 3; commits go on with the others.
if case_wanted one_superblock; then
	fresh
	spare_faults "$(sb_area 3)" "$(journal_area 1)"
	for b in 100 110 120 130; do write_block /dev/mapper/r0 $b /tmp/dmr-b$b; done
	echo "superblock and journal failing: $(dmsetup status r0)"
	[ "$(status_meta r0 1)" != 5/5 ] || fail "one_superblock: all copies said current"
	reload_healthy one_superblock
	for b in 100 110 120 130; do check_block one_superblock $b /tmp/dmr-b$b; done
	[ "$(status_meta r0 1)" = 5/5 ] || fail "one_superblock: copies not repaired: $(dmsetup status r0)"
	dmsetup remove r0
	result PASS metadata_faults:one_superblock
fi

# Four journals fail: every append misses its quorum and is rolled forward by a checkpoint
# (slots and superblocks still write): the writes still succeed.
if case_wanted four_journals; then
	fresh
	spare_faults "$(journal_area 1)" "$(journal_area 2)" "$(journal_area 3)" "$(journal_area 4)"
	for b in 100 110 120 130; do write_block /dev/mapper/r0 $b /tmp/dmr-b$b; done
	echo "four journals failing: $(dmsetup status r0)"
	reload_healthy four_journals
	for b in 100 110 120 130; do check_block four_journals $b /tmp/dmr-b$b; done
	dmsetup remove r0
	result PASS metadata_faults:four_journals
fi

# No quorum at all (only copy 0's journal writes): the write fails, its block is frozen
# (reads go where the data was, writes fail) until a checkpoint succeeds; then the undone
# move is recorded and the next write remaps the block anew.
if case_wanted no_quorum; then
	fresh
	write_block /dev/mapper/r0 110 /tmp/dmr-b110
	spare_faults $(all_metadata_but_journal_0)
	io_error /dev/mapper/r0 write $((100 * 4096)) 4096 >/dev/null
	[ "$(status_frozen r0)" = 1 ] || fail "no_quorum: want 1 frozen block: $(dmsetup status r0)"
	[ "$(dmsetup message r0 0 query 100)" = "100 moving" ] || fail "no_quorum: $(dmsetup message r0 0 query 100)"
	io_error /dev/mapper/r0 write $((100 * 4096)) 4096 >/dev/null
	spare_faults
	write_block /dev/mapper/r0 100 /tmp/dmr-c100
	[ "$(status_frozen r0)" = 0 ] || fail "no_quorum: still frozen: $(dmsetup status r0)"
	check_block no_quorum 100 /tmp/dmr-c100
	new=$(dmsetup message r0 0 query 100 | awk '{print $3}')
	reload_healthy no_quorum
	check_block no_quorum 100 /tmp/dmr-c100
	check_block no_quorum 110 /tmp/dmr-b110
	[ "$(dmsetup message r0 0 query 100 | awk '{print $3}')" = "$new" ] || fail "no_quorum: block 100 moved after reload"
	dmsetup remove r0
	# The failed move's spare block is retired, never used.
	dm-remap-tool dump /dev/mapper/sp >/tmp/dmr-dump || fail "no_quorum: tool dump failed"
	grep -q '^retired ' /tmp/dmr-dump || fail "no_quorum: the failed move's spare block is not retired"
	result PASS metadata_faults:no_quorum
fi

# The same, but the device goes away while the block is frozen (a crash): after the
# reload the block holds either its old state (unreadable here) or the failed write's
# data, never anything else; what was acknowledged is there.
if case_wanted crash_frozen; then
	fresh
	write_block /dev/mapper/r0 110 /tmp/dmr-b110
	spare_faults $(all_metadata_but_journal_0)
	# dd (not fio): the write must carry known data; an EIO is not retried without O_DIRECT.
	dd if=/tmp/dmr-b120 of=/dev/mapper/r0 bs=4096 seek=120 count=1 oflag=direct 2>/dev/null &&
		fail "crash_frozen: the write to block 120 succeeded"
	reload_healthy crash_frozen
	check_block crash_frozen 110 /tmp/dmr-b110
	if dd if=/dev/mapper/r0 of=/tmp/dmr-blk bs=4096 skip=120 count=1 iflag=direct 2>/dev/null; then
		cmp -s /tmp/dmr-blk /tmp/dmr-b120 || fail "crash_frozen: block 120 reads data it never held"
		echo "crash_frozen: the failed move survived (its write's data)"
	else
		echo "crash_frozen: the failed move was undone (block unreadable, as before)"
	fi
	[ "$(status_meta r0 1)" = 5/5 ] || fail "crash_frozen: copies not repaired"
	dmsetup remove r0
	result PASS metadata_faults:crash_frozen
fi

# unremap whose commit fails: the block stays frozen on its spare block (reads work,
# writes fail); after the spare heals it is remapped as before and takes writes.
if case_wanted unremap_frozen; then
	fresh
	dmsetup message r0 0 remap 700 >/dev/null
	write_block /dev/mapper/r0 700 /tmp/dmr-b130
	s=$(dmsetup message r0 0 query 700 | awk '{print $3}')
	spare_faults $(all_metadata_but_journal_0)
	expect_fail dmsetup message r0 0 unremap 700
	[ "$(status_frozen r0)" = 1 ] || fail "unremap_frozen: want 1 frozen block: $(dmsetup status r0)"
	block_of /dev/mapper/r0 700
	cmp -s /tmp/dmr-blk /tmp/dmr-b130 || fail "unremap_frozen: read of the frozen block"
	io_error /dev/mapper/r0 write $((700 * 4096)) 4096 >/dev/null
	spare_faults
	write_block /dev/mapper/r0 700 /tmp/dmr-c130
	[ "$(dmsetup message r0 0 query 700)" = "700 spare $s" ] || fail "unremap_frozen: $(dmsetup message r0 0 query 700)"
	reload_healthy unremap_frozen
	check_block unremap_frozen 700 /tmp/dmr-c130
	dmsetup remove r0
	result PASS metadata_faults:unremap_frozen
fi

# A commit that needs a checkpoint (the journal is full: 32 one-record commits) for a move
# off a failing spare block: the checkpoint records the committed state plus this move,
# never the block both remapped and retired (defect 4); the table loads.
if case_wanted checkpoint_move; then
	fresh
	for b in $(seq 1000 1031); do dmsetup message r0 0 remap "$b" >/dev/null; done
	s=$(dmsetup message r0 0 query 1000 | awk '{print $3}')
	spare_faults "$((s * 8)):8"
	bytes=$(status_meta r0 3)
	write_block /dev/mapper/r0 1000 /tmp/dmr-b1000
	[ $(($(status_meta r0 3) - bytes)) -gt $((5 * 4096)) ] ||
		fail "checkpoint_move: the commit was not a checkpoint (the journal was not full)"
	t=$(dmsetup message r0 0 query 1000 | awk '{print $3}')
	[ "$t" != "$s" ] || fail "checkpoint_move: block 1000 did not move"
	reload_healthy checkpoint_move
	check_block checkpoint_move 1000 /tmp/dmr-b1000
	[ "$(dmsetup message r0 0 query 1000 | awk '{print $3}')" = "$t" ] || fail "checkpoint_move: lost the move"
	# 32 blocks use a spare block, one is retired: counted once each.
	total=$(dmsetup status r0 | awk '{ split($4, a, "/"); print a[2] }')
	[ "$(cat /sys/kernel/dm_remap/r0/remaps/spare_retired)" = 1 ] &&
		[ "$(cat /sys/kernel/dm_remap/r0/remaps/spare_free)" = $((total - 33)) ] ||
		fail "checkpoint_move: retired $(cat /sys/kernel/dm_remap/r0/remaps/spare_retired), free $(cat /sys/kernel/dm_remap/r0/remaps/spare_free) of $total"
	dmsetup remove r0
	dm-remap-tool dump /dev/mapper/sp >/tmp/dmr-dump
	grep -qx "retired $s" /tmp/dmr-dump || fail "checkpoint_move: spare block $s not retired"
	[ "$(grep -c "spare $s\$" /tmp/dmr-dump)" = 0 ] || fail "checkpoint_move: spare block $s both used and retired"
	result PASS metadata_faults:checkpoint_move
fi

# A move off a failing spare block whose commit fails: the block stays on its old spare
# block, which is not retired (defect 12); once healed it takes writes there again.
if case_wanted move_off_spare; then
	fresh
	dmsetup message r0 0 remap 1500 >/dev/null
	write_block /dev/mapper/r0 1500 /tmp/dmr-b1500
	s=$(dmsetup message r0 0 query 1500 | awk '{print $3}')
	spare_faults "$((s * 8)):8" $(all_metadata_but_journal_0)
	io_error /dev/mapper/r0 write $((1500 * 4096)) 4096 >/dev/null
	block_of /dev/mapper/r0 1500
	cmp -s /tmp/dmr-blk /tmp/dmr-b1500 || fail "move_off_spare: frozen block reads other data"
	spare_faults
	write_block /dev/mapper/r0 1500 /tmp/dmr-c1500
	[ "$(dmsetup message r0 0 query 1500)" = "1500 spare $s" ] || fail "move_off_spare: $(dmsetup message r0 0 query 1500)"
	reload_healthy move_off_spare
	check_block move_off_spare 1500 /tmp/dmr-c1500
	dmsetup remove r0
	dm-remap-tool check /dev/mapper/sp >/tmp/dmr-check || { cat /tmp/dmr-check; fail "move_off_spare: tool check"; }
	dm-remap-tool dump /dev/mapper/sp >/tmp/dmr-dump
	grep -qx "retired $s" /tmp/dmr-dump && fail "move_off_spare: spare block $s in use and retired"
	result PASS metadata_faults:move_off_spare
fi

# A checkpoint whose superblock writes fail on the only copies holding the newest records
# (journals of copies 2-4 and superblocks of copies 0-1 fail writes; 36 commits, past a
# full journal): the copies that cannot be switched keep their records (the journal is
# not erased before the superblock, defect 8); everything acknowledged survives.
if case_wanted checkpoint_sb_fail; then
	fresh
	spare_faults "$(journal_area 2)" "$(journal_area 3)" "$(journal_area 4)" "$(sb_area 0)" "$(sb_area 1)"
	: >/tmp/dmr-acked
	for b in $(seq 2000 2035); do
		dmsetup message r0 0 remap "$b" >/dev/null 2>&1 && echo "$b" >>/tmp/dmr-acked
	done
	echo "checkpoint_sb_fail: $(wc -l </tmp/dmr-acked) remaps acknowledged; $(dmsetup status r0)"
	reload_healthy checkpoint_sb_fail
	for b in $(cat /tmp/dmr-acked); do
		dmsetup message r0 0 query "$b" | grep -q "^$b spare " ||
			fail "checkpoint_sb_fail: acknowledged remap of block $b lost"
	done
	[ "$(wc -l </tmp/dmr-acked)" = 36 ] ||
		fail "checkpoint_sb_fail: only $(wc -l </tmp/dmr-acked) of 36 remaps acknowledged"
	dmsetup remove r0
	result PASS metadata_faults:checkpoint_sb_fail
fi

dmsetup remove sp
dmsetup remove badmain
