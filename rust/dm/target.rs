// SPDX-License-Identifier: GPL-2.0

//! Target type registration and the callbacks device-mapper calls into a target.

use super::bio::per_io_size_of;
use super::{Bio, BlkStatus, DeferredBio, DeviceIter, DmDev, QueueLimits, ResultBuf};
use crate::rust::bindings;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use kernel::error::{to_result, VTABLE_DEFAULT_ERROR};
use kernel::prelude::*;
use kernel::types::{ForeignOwnable, Opaque};

/// The target supports `REQ_NOWAIT` bios: its `map` never sleeps.
pub(crate) const FEATURE_NOWAIT: u64 = bindings::DM_TARGET_NOWAIT as u64;

/// Alignment device-mapper gives per-bio data (it sits in front of the bio, which is
/// 8-byte aligned; `per_io_size_of` rounds the size up to keep it so).
const PER_IO_ALIGN: usize = 8;

/// What `map` did with a bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapResult {
    /// The bio was redirected with [`Bio::set_dev`]; device-mapper submits it.
    Remapped,
    /// Fail the bio with an I/O error.
    Kill,
    /// The target takes the bio over: device-mapper calls [`Operations::defer`] with it
    /// and the target completes it later (`DM_MAPIO_SUBMITTED`).
    Defer,
}

impl MapResult {
    fn to_c(self) -> c_int {
        (match self {
            Self::Remapped => bindings::DM_MAPIO_REMAPPED,
            Self::Defer => bindings::DM_MAPIO_SUBMITTED,
            Self::Kill => bindings::DM_MAPIO_KILL,
        }) as c_int
    }
}

/// What `end_io` decided about a completed bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndIoResult {
    /// Complete the bio with the (possibly changed) status.
    Done,
    /// The target takes the bio over: device-mapper calls [`Operations::defer`] with it
    /// and the target completes it later (`DM_ENDIO_INCOMPLETE`).
    Defer,
}

impl EndIoResult {
    fn to_c(self) -> c_int {
        (match self {
            Self::Done => bindings::DM_ENDIO_DONE,
            Self::Defer => bindings::DM_ENDIO_INCOMPLETE,
        }) as c_int
    }
}

/// Which status `dmsetup` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusType {
    /// `dmsetup status`: the target's state.
    Info,
    /// `dmsetup table`: a table line that recreates the target.
    Table,
    /// IMA measurement: `key=value,...;`.
    Ima,
}

/// Why a constructor failed: an errno and the message device-mapper logs (`ti->error`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CtrError {
    /// Returned to userspace.
    pub(crate) errno: Error,
    /// Logged by device-mapper as the reason.
    pub(crate) message: &'static CStr,
}

impl CtrError {
    /// A constructor error with `errno` and `message`.
    pub(crate) fn new(errno: Error, message: &'static CStr) -> Self {
        Self { errno, message }
    }

    /// An `-EINVAL` constructor error.
    pub(crate) fn invalid(message: &'static CStr) -> Self {
        Self::new(EINVAL, message)
    }
}

/// Why a message was refused: an errno for userspace and a reason logged to the kernel log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageError {
    /// Returned to userspace.
    pub(crate) errno: Error,
    /// Logged as the reason.
    pub(crate) reason: &'static CStr,
}

impl MessageError {
    /// A message error with `errno` and `reason`.
    pub(crate) fn new(errno: Error, reason: &'static CStr) -> Self {
        Self { errno, reason }
    }

    /// An `-EINVAL` message error.
    pub(crate) fn invalid(reason: &'static CStr) -> Self {
        Self {
            errno: EINVAL,
            reason,
        }
    }
}

/// Access to a `dm_target` while its constructor runs.
///
/// # Invariants
///
/// `ti` is the target device-mapper is constructing: valid, and ours to configure, for
/// `'a`, which ends when the constructor returns.
pub(crate) struct TargetCtx<'a> {
    ti: NonNull<bindings::dm_target>,
    _ctr: PhantomData<&'a mut bindings::dm_target>,
}

impl TargetCtx<'_> {
    fn ti(&self) -> *mut bindings::dm_target {
        self.ti.as_ptr()
    }

    /// First sector of the target in the dm device.
    pub(crate) fn begin(&self) -> u64 {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti()).begin }
    }

    /// Length of the target in sectors.
    pub(crate) fn len(&self) -> u64 {
        // SAFETY: `ti` is valid during the constructor.
        unsafe { (*self.ti()).len }
    }

    /// Opens `path` (a device path or `major:minor`) with the table's access mode.
    pub(crate) fn get_device(&mut self, path: &CStr) -> Result<DmDev> {
        let mut dev: *mut bindings::dm_dev = core::ptr::null_mut();
        // SAFETY: `ti` is valid during the constructor (type invariant) and `ti->table` is
        // the table being loaded, valid as long as `ti`; `path` is NUL-terminated, and
        // `dev` is a valid out-pointer.
        to_result(unsafe {
            bindings::dm_get_device(
                self.ti(),
                path.as_char_ptr(),
                bindings::dm_table_get_mode((*self.ti()).table),
                &mut dev,
            )
        })?;
        let dev = NonNull::new(dev).ok_or(ENODEV)?;
        // SAFETY: `dm_get_device` succeeded on `ti`, so `dev` is an open reference we now
        // own; `DmDev`s only live in the target state, dropped before `ti` is freed.
        Ok(unsafe { DmDev::from_raw(self.ti, dev) })
    }

    /// Number of empty flush bios device-mapper sends per flush (told apart with
    /// [`Bio::target_bio_nr`]); 0 means flushes are not passed to the target.
    pub(crate) fn set_num_flush_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and ours to configure during the constructor (type
        // invariant); `&mut self` keeps other writers of the field out.
        unsafe { (*self.ti()).num_flush_bios = n };
    }

    /// Number of copies of each discard bio the target receives; 0 disables discards.
    pub(crate) fn set_num_discard_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and ours to configure during the constructor (type
        // invariant); `&mut self` keeps other writers of the field out.
        unsafe { (*self.ti()).num_discard_bios = n };
    }

    /// Number of copies of each write-zeroes bio; 0 disables write-zeroes.
    pub(crate) fn set_num_write_zeroes_bios(&mut self, n: u32) {
        // SAFETY: `ti` is valid and ours to configure during the constructor (type
        // invariant); `&mut self` keeps other writers of the field out.
        unsafe { (*self.ti()).num_write_zeroes_bios = n };
    }

    /// A handle to the target for use after construction (events).
    pub(crate) fn handle(&self) -> TargetHandle {
        // INVARIANT: `ti` is the target under construction; device-mapper frees it only
        // after its destructor (or, if the constructor fails, after the constructor
        // returned), and the handle's holders drop it by then.
        TargetHandle(self.ti)
    }
}

/// A reference to the `dm_target` kept in the target state, to raise events.
///
/// # Invariants
///
/// Points to a target; valid until that target's destructor runs (its state and the
/// registries that hold copies drop them in or before the destructor).
#[derive(Clone)]
pub(crate) struct TargetHandle(NonNull<bindings::dm_target>);

// SAFETY: The handle is a pointer with no thread affinity: the calls it makes
// (`dm_table_event`, `dm_copy_name_and_uuid`, `dm_table_get_md`) may run on any thread.
unsafe impl Send for TargetHandle {}
// SAFETY: The `&self` methods only read the immutable pointer and call functions that
// take device-mapper's own locks (`dm_table_event` its event mutex,
// `dm_copy_name_and_uuid` the hash lock), so concurrent calls are fine.
unsafe impl Sync for TargetHandle {}

impl TargetHandle {
    /// Raises a dm event (`dm_table_event`) that `dmsetup wait` and monitors see.
    ///
    /// Must be called from process context (it takes a mutex).
    pub(crate) fn raise_event(&self) {
        // SAFETY: By the type invariant the target is valid, and so is its table
        // (`ti->table`), which owns the target.
        unsafe { bindings::dm_table_event((*self.0.as_ptr()).table) };
    }

    /// The target's mapped device (`dm_table_get_md`).
    fn md(&self) -> *mut bindings::mapped_device {
        // SAFETY: By the type invariant the target is valid, and so is its table
        // (`ti->table`), which owns the target.
        unsafe { bindings::dm_table_get_md((*self.0.as_ptr()).table) }
    }

    /// The name of the target's dm device as `dmsetup` shows it, copied into `buf`.
    /// Fails with `ENXIO` while the device has no name (not in dm's hash table).
    /// Process context (takes a mutex).
    pub(crate) fn device_name<'a>(&self, buf: &'a mut [u8; NAME_LEN]) -> Result<&'a CStr> {
        buf[0] = 0;
        // SAFETY: `md()` is the mapped device of a valid target (type invariant), which
        // outlives the target; `buf` has room for the longest name and its NUL; a NULL
        // `uuid` asks for no UUID.
        let r = unsafe {
            bindings::dm_copy_name_and_uuid(
                self.md(),
                buf.as_mut_ptr().cast(),
                core::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        CStr::from_bytes_until_nul(&buf[..]).map_err(|_| EINVAL)
    }

    /// What the block layer has counted of the dm device's own I/O (I/O statistics of
    /// its disk, `/sys/block/dm-N/stat`): sectors completed (read, written, discarded)
    /// and I/Os in flight. The background scanner's reads go to the devices below, not
    /// through the dm device, so this is the foreground alone. Both stay 0 when the
    /// queue's `iostats` is switched off.
    pub(crate) fn disk_activity(&self) -> (u64, u64) {
        let part = self.disk_bdev();
        // SAFETY: `part` is a live block device (`disk_bdev`); its per-CPU statistics are read
        // without a lock (summed racily, as `/sys/block/*/stat` does).
        let sectors = unsafe { bindings::dmr_part_stat_sectors(part) } as u64;
        // SAFETY: As above; `bdev_count_inflight` sums the per-CPU counts (clamping a
        // racy negative sum to 0).
        let in_flight = unsafe { bindings::bdev_count_inflight(part) };
        (sectors, u64::from(in_flight))
    }

    /// The block device of the dm device's whole disk, to submit bios to (`rust/dm/slots.rs`).
    /// Valid while the target exists (type invariant: the mapped device outlives it).
    pub(super) fn disk_bdev(&self) -> *mut bindings::block_device {
        // SAFETY: `md()` is the mapped device of a valid target (type invariant), whose
        // disk and its whole-disk block device live as long as the mapped device.
        unsafe { bindings::dmr_dm_disk_part0(self.md()) }
    }

    /// Sectors written or discarded on the dm device, as the block layer counts them
    /// (`/sys/block/dm-N/stat`; stays 0 with the queue's `iostats` off).
    pub(crate) fn written_sectors(&self) -> u64 {
        // SAFETY: As in `disk_bdev`; the per-CPU statistics are summed without a lock.
        unsafe { bindings::dmr_part_stat_write_sectors(self.disk_bdev()) as u64 }
    }

    /// Whether the dm device's disk is dead: `dmsetup remove` marks it so before it
    /// suspends the device, and I/O submitted to it fails from then on.
    pub(crate) fn disk_dead(&self) -> bool {
        // SAFETY: As in `disk_bdev`; the flag is read with `test_bit`.
        unsafe { bindings::dmr_dm_disk_dead(self.md()) }
    }

    /// Whether the dm device may be written: not set read-only, and its table loaded for
    /// writing (not `dmsetup create -r`).
    pub(crate) fn writable(&self) -> bool {
        // SAFETY: As in `disk_bdev`; the target's table (`ti->table`) is valid with it.
        unsafe { bindings::dmr_dm_writable(self.md(), (*self.0.as_ptr()).table) }
    }

    /// How many times the dm device is open (`disk_openers`: mounts, processes, holders
    /// such as another dm device stacked on it).
    pub(crate) fn openers(&self) -> u32 {
        // SAFETY: As in `disk_bdev`; the count is read with `atomic_read`.
        unsafe { bindings::dmr_disk_openers(self.md()) }
    }

    /// Identifies the target's dm device (the same for every table it loads) while the
    /// target exists. Only an identity: never turned back into a pointer.
    pub(crate) fn device_id(&self) -> usize {
        self.md() as usize
    }
}

/// Room for a dm device name and its NUL (`DM_NAME_LEN`).
pub(crate) const NAME_LEN: usize = bindings::DM_NAME_LEN as usize;

/// A device-mapper target type.
///
/// Optional callbacks are left out of the C `target_type` when not implemented (see
/// `#[vtable]`). Every method except `new` borrows the state device-mapper keeps in
/// `ti->private`; `map` and `end_io` run concurrently on many CPUs and in contexts that
/// may not sleep, so they must not block.
#[vtable]
pub(crate) trait Operations: Sized + Send + Sync + 'static {
    /// The target name in table lines.
    const NAME: &'static CStr;
    /// Target version reported by `dmsetup targets`.
    const VERSION: [u32; 3];
    /// `DM_TARGET_*` feature flags.
    const FEATURES: u64;

    /// Data device-mapper keeps in front of every bio for the target (`per_io_data_size`).
    /// Written with `Default` before `map`, handed to `end_io`; never dropped, hence `Copy`.
    type PerIo: Default + Copy + Send;

    /// Constructor: parses `args` (the table line after `<start> <len> <name>`).
    fn new(ctx: &mut TargetCtx<'_>, args: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError>;

    /// Maps a bio.
    fn map(&self, bio: &mut Bio, io: &mut Self::PerIo) -> MapResult;

    /// Called when a remapped bio completes; may change `status`.
    fn end_io(
        &self,
        _bio: &mut Bio,
        _io: &mut Self::PerIo,
        _status: &mut BlkStatus,
    ) -> EndIoResult {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Takes over a bio that `map` or `end_io` answered with `Defer`. The bio must be
    /// completed with [`DeferredBio::complete`]; device-mapper then calls `end_io` for it
    /// again (with the status given), where the target answers `Done`.
    fn defer(&self, _bio: DeferredBio<Self::PerIo>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes the target's status.
    fn status(&self, _kind: StatusType, _out: &mut ResultBuf<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message`; text written to `out` is returned to userspace.
    fn message(&self, _args: &[&CStr], _out: &mut ResultBuf<'_>) -> Result<(), MessageError> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device suspends (I/O may still be in flight).
    fn presuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when a suspend that called [`Operations::presuspend`] is abandoned (its
    /// filesystem freeze failed, or the wait was interrupted): the device stays live.
    fn presuspend_undo(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called after the device suspended (no I/O in flight).
    fn postsuspend(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device resumes; an error keeps it suspended.
    fn preresume(&self) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when the device resumes.
    fn resume(&self) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports every region of every underlying device the target uses.
    fn iterate_devices(&self, _iter: &mut DeviceIter<'_>) -> c_int {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Adjusts the queue limits of the dm device.
    fn io_hints(&self, _limits: &mut QueueLimits) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Borrows the state of target `ti`.
///
/// # Safety
///
/// `ti` must be a constructed target of type `T` whose destructor has not run, and the
/// borrow must end before it does (device-mapper guarantees both for its callbacks).
unsafe fn state<'a, T: Operations>(ti: *mut bindings::dm_target) -> &'a T {
    // SAFETY: `ti->private` was set by `ctr` from `Pin<KBox<T>>::into_foreign` and is
    // not reclaimed before `dtr`, which the caller guarantees has not run.
    let pinned: Pin<&'a T> = unsafe { <Pin<KBox<T>> as ForeignOwnable>::borrow((*ti).private) };
    pinned.get_ref()
}

/// The per-bio data of `bio` for target type `T`.
///
/// # Safety
///
/// `bio` must be a bio device-mapper cloned for a target of type `T`, whose
/// `per_io_data_size` was set by `ctr`; the data must have been initialised (by
/// `Adapter::map`) unless the caller is about to initialise it.
unsafe fn per_io<T: Operations>(bio: *mut bindings::bio) -> *mut T::PerIo {
    let size = per_io_size::<T>();
    if size == 0 {
        return NonNull::dangling().as_ptr();
    }
    // SAFETY: `per_io_data_size` is `size` for this target (set in `ctr`).
    unsafe { bindings::dm_per_bio_data(bio, size as usize) }.cast()
}

/// The `per_io_data_size` for target type `T`.
const fn per_io_size<T: Operations>() -> u32 {
    per_io_size_of::<T::PerIo>()
}

/// The C callbacks of target type `T`.
struct Adapter<T>(PhantomData<T>);

impl<T: Operations> Adapter<T> {
    /// # Safety
    ///
    /// Called by device-mapper as `ctr` with a valid `ti` and `argc` NUL-terminated strings
    /// in `argv`.
    unsafe extern "C" fn ctr(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
    ) -> c_int {
        const {
            assert!(core::mem::align_of::<T::PerIo>() <= PER_IO_ALIGN);
        }
        let Some(ti_nn) = NonNull::new(ti) else {
            return EINVAL.to_errno();
        };
        let fail = move |e: CtrError| {
            // SAFETY: `ti` is valid; `ti->error` takes a string that outlives the table
            // load, which a `'static` string does. dm-core never writes through it.
            unsafe { (*ti).error = e.message.as_char_ptr().cast_mut() };
            e.errno.to_errno()
        };
        let mut args = KVec::new();
        for i in 0..argc as usize {
            // SAFETY: `argv` has `argc` valid entries.
            let arg = unsafe { *argv.add(i) };
            // SAFETY: Each entry is a NUL-terminated string valid during the constructor.
            let arg = unsafe { CStr::from_char_ptr(arg.cast_const().cast()) };
            if args.push(arg, GFP_KERNEL).is_err() {
                return fail(CtrError::new(ENOMEM, c"Cannot allocate argument list"));
            }
        }
        // SAFETY: `ti` is valid and ours to configure during the constructor.
        unsafe { (*ti).per_io_data_size = per_io_size::<T>() };
        // INVARIANT: `ti` is the target being constructed, and `ctx` is dropped before this
        // function returns.
        let mut ctx = TargetCtx {
            ti: ti_nn,
            _ctr: PhantomData,
        };
        match T::new(&mut ctx, &args) {
            Ok(target) => {
                // SAFETY: `ti` is valid and ours to configure during the constructor;
                // `dtr` reclaims the pointer with `from_foreign`.
                unsafe { (*ti).private = target.into_foreign() };
                0
            }
            Err(e) => fail(e),
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `dtr` on a target `ctr` constructed.
    unsafe extern "C" fn dtr(ti: *mut bindings::dm_target) {
        // SAFETY: `private` came from `into_foreign` in `ctr`; no callback borrows it any
        // more once device-mapper calls the destructor.
        drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign((*ti).private) });
    }

    /// # Safety
    ///
    /// Called by device-mapper as `map` with a valid target and bio.
    unsafe extern "C" fn map(ti: *mut bindings::dm_target, bio: *mut bindings::bio) -> c_int {
        // SAFETY: The target is constructed and alive during `map`.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: The per-bio data of this clone belongs to us; initialise it first.
        let io = unsafe {
            let io = per_io::<T>(bio);
            io.write(T::PerIo::default());
            &mut *io
        };
        let raw = bio;
        // SAFETY: device-mapper hands us the bio exclusively during `map`.
        let bio = unsafe { Bio::from_raw(bio) };
        let r = this.map(bio, io);
        if r == MapResult::Defer {
            // SAFETY: We answer DM_MAPIO_SUBMITTED, so completing the bio is now ours; its
            // per-bio data is an initialised `T::PerIo`.
            if let Some(d) = unsafe { DeferredBio::from_raw(raw) } {
                this.defer(d);
            }
        }
        r.to_c()
    }

    /// # Safety
    ///
    /// Called by device-mapper as `end_io` for a bio `map` remapped.
    unsafe extern "C" fn end_io(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
        error: *mut bindings::blk_status_t,
    ) -> c_int {
        // SAFETY: The target is alive while its bios complete.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: `map` initialised the per-bio data of this bio.
        let io = unsafe { &mut *per_io::<T>(bio) };
        // SAFETY: The completing bio is ours until `end_io` returns.
        let bio = unsafe { Bio::from_raw(bio) };
        // SAFETY: `error` points to the bio's status for this call.
        let mut status = BlkStatus(unsafe { *error });
        let r = this.end_io(bio, io, &mut status);
        // SAFETY: `error` points to the bio's status for this call; nobody else writes it
        // while `end_io` runs.
        unsafe { *error = status.0 };
        if r == EndIoResult::Defer {
            // SAFETY: We answer DM_ENDIO_INCOMPLETE, so completing the bio is now ours; its
            // per-bio data was initialised by `map`.
            if let Some(d) = unsafe { DeferredBio::from_raw(bio.as_raw()) } {
                this.defer(d);
            }
        }
        r.to_c()
    }

    /// # Safety
    ///
    /// Called by device-mapper as `status` with a result buffer of `maxlen` bytes.
    unsafe extern "C" fn status(
        ti: *mut bindings::dm_target,
        kind: bindings::status_type_t,
        _flags: c_uint,
        result: *mut c_char,
        maxlen: c_uint,
    ) {
        // SAFETY: The target is alive during `status`.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: `result` is writable for `maxlen` bytes during this call.
        let mut out = unsafe { ResultBuf::from_raw(result.cast(), maxlen) };
        let kind = match kind {
            bindings::status_type_t_STATUSTYPE_INFO => StatusType::Info,
            bindings::status_type_t_STATUSTYPE_TABLE => StatusType::Table,
            bindings::status_type_t_STATUSTYPE_IMA => StatusType::Ima,
            _ => return,
        };
        this.status(kind, &mut out);
    }

    /// # Safety
    ///
    /// Called by device-mapper as `message` with `argc` strings and a result buffer.
    unsafe extern "C" fn message(
        ti: *mut bindings::dm_target,
        argc: c_uint,
        argv: *mut *mut c_char,
        result: *mut c_char,
        maxlen: c_uint,
    ) -> c_int {
        // SAFETY: The target is alive during `message`.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: `result` is writable for `maxlen` bytes during this call.
        let mut out = unsafe { ResultBuf::from_raw(result.cast(), maxlen) };
        let mut args = KVec::new();
        for i in 0..argc as usize {
            // SAFETY: `argv` has `argc` NUL-terminated strings valid during this call.
            let arg = unsafe { CStr::from_char_ptr((*argv.add(i)).cast_const().cast()) };
            if args.push(arg, GFP_KERNEL).is_err() {
                return ENOMEM.to_errno();
            }
        }
        match this.message(&args, &mut out) {
            // 1 tells device-mapper that `result` holds a reply.
            Ok(()) => c_int::from(!out.is_empty()),
            Err(e) => {
                pr_warn!(
                    "{}: message rejected: {}\n",
                    T::NAME.to_str().unwrap_or("?"),
                    e.reason.to_str().unwrap_or("?")
                );
                e.errno.to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `presuspend` on a live target.
    unsafe extern "C" fn presuspend(ti: *mut bindings::dm_target) {
        // SAFETY: The target is alive.
        unsafe { state::<T>(ti) }.presuspend();
    }

    /// # Safety
    ///
    /// Called by device-mapper as `presuspend_undo` on a live target.
    unsafe extern "C" fn presuspend_undo(ti: *mut bindings::dm_target) {
        // SAFETY: The target is alive: device-mapper calls this on a live table whose
        // suspend it abandoned.
        unsafe { state::<T>(ti) }.presuspend_undo();
    }

    /// # Safety
    ///
    /// Called by device-mapper as `postsuspend` on a live target.
    unsafe extern "C" fn postsuspend(ti: *mut bindings::dm_target) {
        // SAFETY: The target is alive.
        unsafe { state::<T>(ti) }.postsuspend();
    }

    /// # Safety
    ///
    /// Called by device-mapper as `preresume` on a live target.
    unsafe extern "C" fn preresume(ti: *mut bindings::dm_target) -> c_int {
        // SAFETY: The target is alive.
        match unsafe { state::<T>(ti) }.preresume() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `resume` on a live target.
    unsafe extern "C" fn resume(ti: *mut bindings::dm_target) {
        // SAFETY: The target is alive.
        unsafe { state::<T>(ti) }.resume();
    }

    /// # Safety
    ///
    /// Called by device-mapper as `iterate_devices` with a valid callout.
    unsafe extern "C" fn iterate_devices(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: The target is alive.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: The arguments are those of this `iterate_devices` call.
        let mut iter = unsafe { DeviceIter::new(ti, callout, data) };
        this.iterate_devices(&mut iter)
    }

    /// # Safety
    ///
    /// Called by device-mapper as `io_hints` with valid limits.
    unsafe extern "C" fn io_hints(
        ti: *mut bindings::dm_target,
        limits: *mut bindings::queue_limits,
    ) {
        // SAFETY: The target is alive.
        let this = unsafe { state::<T>(ti) };
        // SAFETY: `limits` is ours to modify during this call.
        this.io_hints(unsafe { QueueLimits::from_raw(limits) });
    }

    fn target_type(module: &'static ThisModule) -> bindings::target_type {
        // SAFETY: `target_type` is a C struct of integers, pointers and optional function
        // pointers, for all of which zero is a valid value (null / `None`).
        let mut tt: bindings::target_type = unsafe { core::mem::zeroed() };
        tt.name = T::NAME.as_char_ptr();
        tt.module = module.as_ptr().cast();
        tt.version = T::VERSION;
        tt.features = T::FEATURES;
        tt.ctr = Some(Self::ctr);
        tt.dtr = Some(Self::dtr);
        tt.map = Some(Self::map);
        if T::HAS_END_IO {
            tt.end_io = Some(Self::end_io);
        }
        if T::HAS_STATUS {
            tt.status = Some(Self::status);
        }
        if T::HAS_MESSAGE {
            tt.message = Some(Self::message);
        }
        if T::HAS_PRESUSPEND {
            tt.presuspend = Some(Self::presuspend);
        }
        if T::HAS_PRESUSPEND_UNDO {
            tt.presuspend_undo = Some(Self::presuspend_undo);
        }
        if T::HAS_POSTSUSPEND {
            tt.postsuspend = Some(Self::postsuspend);
        }
        if T::HAS_PRERESUME {
            tt.preresume = Some(Self::preresume);
        }
        if T::HAS_RESUME {
            tt.resume = Some(Self::resume);
        }
        if T::HAS_ITERATE_DEVICES {
            tt.iterate_devices = Some(Self::iterate_devices);
        }
        if T::HAS_IO_HINTS {
            tt.io_hints = Some(Self::io_hints);
        }
        tt
    }
}

/// A registered target type, unregistered when dropped.
///
/// # Invariants
///
/// `tt` is registered with device-mapper from initialisation until drop; it is pinned
/// because device-mapper links it into its list of target types.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: Operations> {
    #[pin]
    tt: Opaque<bindings::target_type>,
    _target: PhantomData<T>,
}

// SAFETY: device-mapper synchronises all access to a registered target type itself.
unsafe impl<T: Operations> Send for Registration<T> {}
// SAFETY: `Registration` has no `&self` methods that touch the target type.
unsafe impl<T: Operations> Sync for Registration<T> {}

impl<T: Operations> Registration<T> {
    /// Registers target type `T`, owned by `module`.
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // INVARIANT: The initialiser fails unless `dm_register_target` succeeded, so
            // every `Registration` holds a registered, pinned target type.
            tt <- Opaque::try_ffi_init(move |slot: *mut bindings::target_type| {
                // SAFETY: `slot` is valid for writes and pinned for the lifetime of `Self`.
                unsafe { slot.write(Adapter::<T>::target_type(module)) };
                // SAFETY: `slot` is an initialised, pinned target type; it stays registered
                // until `drop` unregisters it (type invariant).
                to_result(unsafe { bindings::dm_register_target(slot) })
            }),
            _target: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: Operations> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `tt` is registered. The module cannot be unloaded
        // (and so this cannot run) while a table uses the target: dm holds a module
        // reference for every target instance.
        unsafe { bindings::dm_unregister_target(self.tt.get()) };
    }
}
