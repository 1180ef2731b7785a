# Every bad table line is refused with its own message in the kernel log, and no device
# is left behind.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 4)
len=$(sectors "$main")
slen=$(sectors "$spare")
insmod "$DMR_EXTRA_MODULES/null_blk.ko" nr_devices=1 bs=4096 gb=1
nb4k=/dev/nullb0

bad() { # name table-args expected-message
	klog_mark
	if echo "$2" | dmsetup create bad >/tmp/dmr-bad.out 2>&1; then
		dmsetup remove bad
		result FAIL "bad_table:$1" "accepted: $2"
	elif ! klog_since | grep -qF "remap: $3"; then
		klog_since
		result FAIL "bad_table:$1" "message '$3' not logged"
	elif dmsetup info bad >/dev/null 2>&1 || ! dmsetup ls | grep -q 'No devices found'; then
		result FAIL "bad_table:$1" "device left behind"
	else
		result PASS "bad_table:$1"
	fi
}

bad arg_count "0 $len remap $main $spare 0" "Invalid argument count"
bad arg_count_extra "0 $len remap $main $spare 0 8 extra" "Invalid #feature_args: not a decimal number"
bad main_missing "0 $len remap /dev/nonexistent $spare 0 8" "Cannot open main device"
bad spare_missing "0 $len remap $main /dev/nonexistent 0 8" "Cannot open spare device"
bad spare_start_text "0 $len remap $main $spare abc 8" "Invalid spare_start: not a decimal number"
bad spare_start_negative "0 $len remap $main $spare -8 8" "Invalid spare_start: not a decimal number"
bad spare_start_overflow "0 $len remap $main $spare 99999999999999999999 8" "Invalid spare_start: does not fit in 64 bits"
bad spare_len_text "0 $len remap $main $spare 0 8x" "Invalid spare_len: not a decimal number"
bad spare_len_overflow "0 $len remap $main $spare 0 18446744073709551616" "Invalid spare_len: does not fit in 64 bits"
bad spare_len_zero "0 $len remap $main $spare 0 0" "Invalid spare_len: must be greater than 0"
bad spare_region_overflow "0 $len remap $main $spare 18446744073709551615 1" "Invalid spare region: spare_start + spare_len overflows"
bad spare_past_end "0 $len remap $main $spare 8 $slen" "Spare region extends past the end of the spare device"
bad same_device_overlap "0 8192 remap $main $main 4096 4096" "Spare region overlaps the mapped region of the main device"
bad target_too_long "0 $((len + 8)) remap $main $spare 0 8" "Target length exceeds the size of the main device"
bad feature_count_text "0 $len remap $main $spare 0 8 x block_size 4096" "Invalid #feature_args: not a decimal number"
bad feature_count_mismatch "0 $len remap $main $spare 0 8 3 block_size 4096" "Invalid #feature_args: does not match"
bad feature_unknown "0 $len remap $main $spare 0 8 1 turbo" "Unknown feature argument"
bad feature_twice "0 $len remap $main $spare 0 64 4 block_size 4096 block_size 4096" "Feature argument given more than once"
bad block_size_missing "0 $len remap $main $spare 0 8 1 block_size" "Invalid block_size: expected block_size <bytes>"
bad block_size_range "0 $len remap $main $spare 0 8 2 block_size 3000" "Invalid block_size: must be a power of two"
bad block_size_below_lbs "0 $len remap $main $nb4k 0 64 2 block_size 512" "Invalid block_size: smaller than the logical block size"
bad spare_misaligned "0 $len remap $main $nb4k 1 64" "Invalid spare_start: not aligned"
bad spare_too_small "0 $len remap $main $spare 0 256" "Spare region is too small for the metadata copies"
bad target_unaligned "0 $((len - 1)) remap $main $spare 0 2048" "Target length is not a multiple of the block size"
bad read_retries_range "0 $len remap $main $spare 0 2048 2 read_retries 101" "Invalid read_retries"
