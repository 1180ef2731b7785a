// SPDX-License-Identifier: GPL-2.0

//! Directories under `/sys/kernel` whose files Rust implements (kobjects with attribute
//! groups).
//!
//! The `kernel` crate has no kobject or sysfs support. A [`Dir`] is one kobject of the
//! `kobj_type` defined here, whose `show` and `store` find the directory (`container_of!`)
//! and call the file table of its data's type (a [`Files`] implementation) with the file's
//! number. The kobject holds a reference (`Arc`, as a `ForeignOwnable` pointer) to that
//! data, released with the kobject's last reference: removing a directory waits for running
//! callbacks before that reference is put, so a callback never sees the data go, and a file
//! held open across the removal of its device is safe (it then fails with `ENODEV`).
//!
//! A kobject's release may come after its directory is removed (with
//! `CONFIG_DEBUG_KOBJECT_RELEASE` always, seconds later) and runs this module's code, so the
//! releases are counted and module unload waits for the last one ([`wait_all_released`]).
//!
//! Attribute tables ([`AttrTables`]) are built once from static definitions and must
//! outlive every directory that uses them (the module keeps them).

use crate::rust::bindings;
use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Full, Relaxed};
use kernel::sync::Arc;
use kernel::types::{ForeignOwnable, Opaque};

/// Largest output of a `show` (the sysfs buffer is one page).
// One byte less than the page: `sysfs_kf_seq_show` warns about a `show` that returns the
// whole page.
const SHOW_MAX: usize = kernel::page::PAGE_SIZE - 1;

/// One file of a directory whose files `T` implements. A file with `show` is readable
/// by everyone; one with `store` is writable by root (modes 0444, 0644 or 0200).
pub(crate) struct File<T: 'static> {
    pub(crate) name: &'static CStr,
    /// Writes the contents (at most a page; longer output is cut).
    pub(crate) show: Option<fn(&T, &mut ShowBuf<'_>) -> Result>,
    /// Handles a write of the given bytes (without `echo`'s trailing newline).
    pub(crate) store: Option<fn(&T, &[u8]) -> Result>,
}

impl<T> File<T> {
    fn mode(&self) -> u16 {
        match (self.show.is_some(), self.store.is_some()) {
            (true, true) => 0o644,
            (true, false) => 0o444,
            (false, _) => 0o200,
        }
    }
}

/// A group of files; a named group is a subdirectory.
pub(crate) struct Group<T: 'static> {
    pub(crate) name: Option<&'static CStr>,
    pub(crate) files: &'static [File<T>],
}

/// What a directory's files are.
pub(crate) trait Files: Send + Sync + Sized + 'static {
    /// The files, in groups. A file's number in sysfs is its position in this list.
    const GROUPS: &'static [Group<Self>];
}

/// The file numbered `id` of `T` (see [`Files::GROUPS`]).
fn file<T: Files>(id: u32) -> Option<&'static File<T>> {
    T::GROUPS
        .iter()
        .flat_map(|g| g.files.iter())
        .nth(id as usize)
}

/// A sysfs attribute and the number of its file, which `show` and `store` find with
/// `container_of!` from the `attribute` sysfs passes them.
#[repr(C)]
struct Attr {
    attr: bindings::attribute,
    id: c_uint,
}

/// C attribute and group tables built from a [`Files`] implementation's groups.
///
/// # Invariants
///
/// The vectors are never resized after construction, so the pointers between them (and
/// handed to sysfs) stay valid until drop.
pub(crate) struct AttrTables {
    // Only kept: sysfs reads them through `group_ptrs`.
    _attrs: KVec<Attr>,
    _attr_ptrs: KVec<*mut bindings::attribute>,
    _groups: KVec<bindings::attribute_group>,
    group_ptrs: KVec<*const bindings::attribute_group>,
}

// SAFETY: The raw pointers point only into the tables' own heap buffers (which do not move
// when the vectors do) and to static names, so the tables may be dropped on any thread.
unsafe impl Send for AttrTables {}
// SAFETY: There are no `&self` methods that write: after construction the tables are only
// read (by sysfs, through `group_ptrs`), and concurrent reads are fine.
unsafe impl Sync for AttrTables {}

impl AttrTables {
    /// Builds the tables for the files of `T`.
    pub(crate) fn new<T: Files>() -> Result<Self> {
        let defs = T::GROUPS;
        let n: usize = defs.iter().map(|g| g.files.len()).sum();
        let mut attrs = KVec::with_capacity(n, GFP_KERNEL)?;
        for (id, f) in defs.iter().flat_map(|g| g.files.iter()).enumerate() {
            // Zeroed, then the two fields set: the struct has more fields with lockdep
            // (`key`, `skey`, `ignore_lockdep`), which `dmr_attr_init` below sets up.
            // SAFETY: `struct attribute` is plain data (pointers, integers, a bitfield);
            // all-zero is a valid value of it, as `kzalloc` would give.
            let mut attr: bindings::attribute = unsafe { core::mem::zeroed() };
            attr.name = f.name.as_char_ptr();
            attr.mode = f.mode();
            let c = Attr {
                attr,
                id: u32::try_from(id).map_err(|_| EINVAL)?,
            };
            attrs.push(c, GFP_KERNEL)?;
        }
        for c in attrs.iter_mut() {
            // SAFETY: `c.attr` is a valid attribute that is not registered yet.
            unsafe { bindings::dmr_attr_init(&mut c.attr) };
        }
        // One NULL-terminated pointer list per group, back to back; complete before any
        // pointer into it is taken.
        let mut attr_ptrs = KVec::with_capacity(n + defs.len(), GFP_KERNEL)?;
        let mut starts = KVec::with_capacity(defs.len(), GFP_KERNEL)?;
        // `attrs` is complete too: one base pointer for every pointer into it.
        let attrs_base = attrs.as_mut_ptr();
        let mut next = 0;
        for g in defs {
            starts.push(attr_ptrs.len(), GFP_KERNEL)?;
            for _ in g.files {
                // SAFETY: `next < n`, the length of `attrs`.
                let p = unsafe { &raw mut (*attrs_base.add(next)).attr };
                attr_ptrs.push(p, GFP_KERNEL)?;
                next += 1;
            }
            attr_ptrs.push(core::ptr::null_mut(), GFP_KERNEL)?;
        }
        let base = attr_ptrs.as_mut_ptr();
        let mut groups = KVec::with_capacity(defs.len(), GFP_KERNEL)?;
        for (g, &start) in defs.iter().zip(starts.iter()) {
            // SAFETY: All-zero is a valid, empty `struct attribute_group`.
            let mut cg: bindings::attribute_group = unsafe { core::mem::zeroed() };
            cg.name = g.name.map_or(core::ptr::null(), |s| s.as_char_ptr());
            // SAFETY: `start` is within `attr_ptrs`, which is not changed any more.
            cg.__bindgen_anon_2.attrs = unsafe { base.add(start) };
            groups.push(cg, GFP_KERNEL)?;
        }
        let mut group_ptrs = KVec::with_capacity(defs.len() + 1, GFP_KERNEL)?;
        for g in groups.iter() {
            group_ptrs.push(core::ptr::from_ref(g), GFP_KERNEL)?;
        }
        group_ptrs.push(core::ptr::null(), GFP_KERNEL)?;
        // INVARIANT: Every vector is complete; the fields are private and nothing below
        // resizes them.
        Ok(Self {
            _attrs: attrs,
            _attr_ptrs: attr_ptrs,
            _groups: groups,
            group_ptrs,
        })
    }
}

/// A directory's kobject and what its callbacks need: one allocation, made by
/// [`Dir::new`] and freed by [`release`]. `repr(C)` so that `kobj` is at a fixed offset for
/// `container_of!`.
///
/// Until its release, fields are read and written through raw pointers only (never through
/// a `&RawDir`): `Dir::new` sets `release` while sysfs callbacks may already read the other
/// fields.
#[repr(C)]
struct RawDir {
    kobj: Opaque<bindings::kobject>,
    /// The files' `Arc<T>` as a foreign pointer ([`ForeignOwnable`]).
    data: *mut c_void,
    /// `show_files::<T>` for the `T` of `data`.
    show: ShowFn,
    /// `store_files::<T>` for the `T` of `data`.
    store: StoreFn,
    /// `release_files::<T>`, set once the directory exists: before that a failed creation
    /// still owns `data`, and the kobject's release must not drop it.
    release: Option<ReleaseFn>,
}

type ShowFn = unsafe fn(data: *mut c_void, id: c_uint, buf: *mut c_char) -> isize;
type StoreFn = unsafe fn(data: *mut c_void, id: c_uint, buf: *const c_char, len: usize) -> isize;
type ReleaseFn = unsafe fn(data: *mut c_void);

/// A C table that is only ever read: the kobject type and its sysfs operations.
#[repr(transparent)]
struct ReadOnly<T>(T);

// SAFETY: The wrapped tables hold function pointers and a pointer to another such static;
// nothing writes them after compilation, so sharing them between threads is fine.
unsafe impl<T> Sync for ReadOnly<T> {}

/// The sysfs operations of every [`Dir`].
static SYSFS_OPS: ReadOnly<bindings::sysfs_ops> = ReadOnly(bindings::sysfs_ops {
    show: Some(sysfs_show),
    store: Some(sysfs_store),
});

/// The kobject type of every [`Dir`].
static KTYPE: ReadOnly<bindings::kobj_type> = ReadOnly(bindings::kobj_type {
    release: Some(release),
    sysfs_ops: &SYSFS_OPS.0,
    default_groups: core::ptr::null_mut(),
    child_ns_type: None,
    namespace: None,
    get_ownership: None,
});

/// Kobjects made by [`Dir::new`] and not released yet (see [`wait_all_released`]).
static LIVE: Atomic<i32> = Atomic::new(0);

/// A directory in sysfs, removed on drop.
///
/// # Invariants
///
/// `k` points to a live [`RawDir`] made by `Dir::new`, whose kobject is in sysfs with the
/// groups of `T`, whose `data` is an `Arc<T>` as a foreign pointer and whose `release` is
/// `release_files::<T>`; this value owns the kobject's first reference.
pub(crate) struct Dir<T: Files> {
    k: NonNull<RawDir>,
    _t: PhantomData<Arc<T>>,
}

// SAFETY: Removing a kobject (drop) may happen on any thread, and the `Arc<T>` its release
// drops may be dropped on any thread because `T: Send + Sync`.
unsafe impl<T: Files> Send for Dir<T> {}
// SAFETY: The one `&self` method that changes anything, `notify`, calls `sysfs_notify`, which
// takes the kernfs locks itself and may run concurrently. `rename` takes `&mut self`:
// `kobject_rename` leaves serialising renames to the caller.
unsafe impl<T: Files> Sync for Dir<T> {}

impl<T: Files> Dir<T> {
    /// Creates directory `name` under `parent` (`None`: `/sys/kernel`) with the files of
    /// `T`, read from and written to `files`. `tables` must be `AttrTables::new::<T>()`
    /// and outlive the directory. Sleeps.
    pub(crate) fn new<P: Files>(
        parent: Option<&Dir<P>>,
        name: &CStr,
        tables: &AttrTables,
        files: Arc<T>,
    ) -> Result<Self> {
        let raw = KBox::new(
            RawDir {
                // `kobject_init` wants a zeroed kobject.
                kobj: Opaque::zeroed(),
                data: core::ptr::null_mut(),
                show: show_files::<T>,
                store: store_files::<T>,
                release: None,
            },
            GFP_KERNEL,
        )?;
        let k = KBox::into_raw(raw);
        let data = files.into_foreign();
        // SAFETY: `k` is the allocation just made, not shared yet.
        let kobj = unsafe {
            (*k).data = data;
            (*k).kobj.get()
        };
        // Counted before `kobject_init`: from there on the kobject's release, which
        // uncounts it, is what frees `k`.
        LIVE.fetch_add(1, Relaxed);
        let parent = match parent {
            Some(p) => p.kobj(),
            // SAFETY: `kernel_kobj` is set once at boot, before modules load.
            None => unsafe { bindings::kernel_kobj },
        };
        // SAFETY: `kobj` is zeroed and not initialised yet; `KTYPE` is static. `parent` is a
        // live kobject (`kernel_kobj`, or a `Dir`'s, borrowed for the call; the child takes
        // its own reference). `kobject_add` copies the name, formatted by "%s" from a
        // NUL-terminated string.
        let mut r = unsafe {
            bindings::kobject_init(kobj, &KTYPE.0);
            bindings::kobject_add(kobj, parent, c"%s".as_char_ptr(), name.as_char_ptr())
        };
        if r == 0 {
            // SAFETY: `kobj` is in sysfs; the NULL-terminated group list outlives the
            // directory (the caller's promise about `tables`).
            r = unsafe { bindings::sysfs_create_groups(kobj, tables.group_ptrs.as_ptr()) };
            if r != 0 {
                // SAFETY: `kobj` was added above.
                unsafe { bindings::kobject_del(kobj) };
            }
        }
        if r != 0 {
            // SAFETY: This drops the only reference. `release` is still `None`, so the
            // kobject's release frees `k` (now or later) without touching `data`, which is
            // still ours: no callback can use it any more (no group was left in sysfs).
            unsafe { bindings::kobject_put(kobj) };
            // SAFETY: `data` came from `into_foreign` above and nothing else reclaims it.
            drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(data) });
            return Err(Error::from_errno(r));
        }
        // SAFETY: `k` is live (we hold its first reference); callbacks that may run
        // meanwhile do not read `release`, and the kobject's release, which does, can only
        // run after our reference is dropped.
        unsafe { (*k).release = Some(release_files::<T>) };
        // SAFETY: `kobj` is in sysfs.
        unsafe { bindings::kobject_uevent(kobj, bindings::kobject_action_KOBJ_ADD) };
        // INVARIANT: `k` is live and complete, with `data` from `files` and `release` set;
        // its first reference is the one `kobject_init` gave us.
        Ok(Self {
            // SAFETY: `KBox::into_raw` never returns NULL.
            k: unsafe { NonNull::new_unchecked(k) },
            _t: PhantomData,
        })
    }

    /// The directory's kobject.
    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `k` is live (type invariant); `get` only computes the field's address.
        unsafe { (*self.k.as_ptr()).kobj.get() }
    }

    /// Renames the directory. Sleeps.
    pub(crate) fn rename(&mut self, name: &CStr) -> Result {
        // SAFETY: The kobject is live and in sysfs (type invariant); `name` is
        // NUL-terminated and copied.
        kernel::error::to_result(unsafe {
            bindings::kobject_rename(self.kobj(), name.as_char_ptr())
        })
    }

    /// Wakes `poll()`ers of file `attr` in subdirectory `group`. Sleeps.
    pub(crate) fn notify(&self, group: &CStr, attr: &CStr) {
        // SAFETY: The kobject is live and in sysfs (type invariant); both names are
        // NUL-terminated.
        unsafe { bindings::sysfs_notify(self.kobj(), group.as_char_ptr(), attr.as_char_ptr()) };
    }
}

impl<T: Files> Drop for Dir<T> {
    fn drop(&mut self) {
        let kobj = self.kobj();
        // Once `kobject_del` returns no show or store runs any more (sysfs waits for those
        // in progress); open files then fail with `ENODEV`. The data is released with the
        // last reference.
        // SAFETY: The kobject is live and in sysfs, and this drops the reference taken at
        // creation (type invariant); `kobj` is not used afterwards.
        unsafe {
            bindings::kobject_uevent(kobj, bindings::kobject_action_KOBJ_REMOVE);
            bindings::kobject_del(kobj);
            bindings::kobject_put(kobj);
        }
    }
}

/// Waits until every directory's kobject has been released (its release may come after
/// the directory was removed and runs this module's code). For module unload, after every
/// [`Dir`] was dropped. Sleeps.
pub(crate) fn wait_all_released() {
    // SAFETY: `LIVE` is a static; the waker pairs a fully ordered decrement with
    // `wake_up_var` on the same address (`release`).
    unsafe { bindings::dmr_wait_var_event_zero(LIVE.as_ptr()) };
}

/// The output buffer of a `show`: one page; what does not fit is cut off.
pub(crate) struct ShowBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl ShowBuf<'_> {
    /// Appends formatted text (`out.fmt(format_args!(...))`).
    pub(crate) fn fmt(&mut self, args: fmt::Arguments<'_>) {
        // Never fails: `write_str` cuts instead.
        let _ = fmt::write(self, args);
    }
}

impl fmt::Write for ShowBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The `show` of [`KTYPE`].
///
/// # Safety
///
/// Called by sysfs for an attribute of a live [`Dir`] (one of its [`AttrTables`]) with a
/// page-sized buffer.
unsafe extern "C" fn sysfs_show(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: Every kobject of `KTYPE` is the `kobj` of a `RawDir` (`Opaque` has the
    // layout of what it wraps), alive during the call (kernfs holds an active reference
    // on the attribute for the call, and the only path to the last put, `Dir::drop`, calls
    // `kobject_del` first, which waits for running callbacks); `attr`
    // is the `attr` of an `Attr` of its tables; the fields are read through raw pointers.
    // `show` is `show_files::<T>` for the `T` whose `Arc` is `data`, and `buf` is the page
    // sysfs passed.
    unsafe {
        let k = kernel::container_of!(Opaque::cast_from(kobj).cast_mut(), RawDir, kobj);
        let id = (*kernel::container_of!(attr, Attr, attr)).id;
        ((*k).show)((*k).data, id, buf)
    }
}

/// The `store` of [`KTYPE`].
///
/// # Safety
///
/// Called by sysfs for an attribute of a live [`Dir`] with `len` readable bytes at `buf`.
unsafe extern "C" fn sysfs_store(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *const c_char,
    len: usize,
) -> isize {
    // SAFETY: Every kobject of `KTYPE` is the `kobj` of a `RawDir` (`Opaque` has the
    // layout of what it wraps), alive during the call (kernfs holds an active reference
    // on the attribute for the call, and the only path to the last put, `Dir::drop`, calls
    // `kobject_del` first, which waits for running callbacks); `attr`
    // is the `attr` of an `Attr` of its tables; the fields are read through raw pointers.
    // `store` is `store_files::<T>` for the `T` whose `Arc` is `data`, and `buf` holds the
    // `len` bytes sysfs passed.
    unsafe {
        let k = kernel::container_of!(Opaque::cast_from(kobj).cast_mut(), RawDir, kobj);
        let id = (*kernel::container_of!(attr, Attr, attr)).id;
        ((*k).store)((*k).data, id, buf, len)
    }
}

/// The `release` of [`KTYPE`]: the kobject's last reference is gone.
///
/// # Safety
///
/// Called once per kobject of `KTYPE`, by the kobject core, after its last reference.
unsafe extern "C" fn release(kobj: *mut bindings::kobject) {
    // SAFETY: `kobj` is in a `RawDir` that `Dir::new` allocated with `KBox` and leaked;
    // this is its only release, so the box is ours to free. `release` is set only when
    // `data` is the directory's (and then `release_files` reclaims it once, here).
    unsafe {
        let k = kernel::container_of!(Opaque::cast_from(kobj).cast_mut(), RawDir, kobj);
        let dir = KBox::from_raw(k);
        if let Some(release) = dir.release {
            release(dir.data);
        }
    }
    // Fully ordered, as `atomic_dec_and_test`: everything above happens before a waiter
    // sees the count drop. The waiter may return (and unload the module) as soon as it
    // sees zero, so only the wake-up and the return follow (as in any module code that
    // wakes its unloader).
    if LIVE.fetch_sub(1, Full) == 1 {
        // SAFETY: Any address may be woken; this is the one `wait_all_released` waits on.
        unsafe { bindings::wake_up_var(LIVE.as_ptr().cast()) };
    }
}

/// `show` for directories of `T`.
///
/// # Safety
///
/// `data` must be the `Arc<T>` (foreign pointer) of a live `Dir<T>`, `buf` a page-sized
/// buffer ours for the call.
unsafe fn show_files<T: Files>(data: *mut c_void, id: c_uint, buf: *mut c_char) -> isize {
    // SAFETY: The kobject holds the `Arc<T>` until its release, which cannot come during the
    // call (`sysfs_show`/`sysfs_store`: `Dir::drop` waits for running callbacks before its
    // put).
    let files = unsafe { <Arc<T> as ForeignOwnable>::borrow(data) };
    // SAFETY: sysfs passes a buffer of `PAGE_SIZE` bytes, ours for the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), SHOW_MAX) };
    let mut out = ShowBuf { buf, len: 0 };
    let Some(show) = file::<T>(id).and_then(|f| f.show) else {
        // A write-only file opened for reading by root.
        return EACCES.to_errno() as isize;
    };
    match show(&files, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `store` for directories of `T`.
///
/// # Safety
///
/// `data` must be the `Arc<T>` (foreign pointer) of a live `Dir<T>`, and `buf` must hold
/// `len` readable bytes for the call.
unsafe fn store_files<T: Files>(
    data: *mut c_void,
    id: c_uint,
    buf: *const c_char,
    len: usize,
) -> isize {
    // SAFETY: The kobject holds the `Arc<T>` until its release, and sysfs keeps the kobject
    // alive while a `store` runs.
    let files = unsafe { <Arc<T> as ForeignOwnable>::borrow(data) };
    // SAFETY: sysfs passes `len` bytes at `buf`, valid for the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    // `echo` appends one newline; anything else is part of the value.
    let trimmed = input.strip_suffix(b"\n").unwrap_or(input);
    let Some(store) = file::<T>(id).and_then(|f| f.store) else {
        return EACCES.to_errno() as isize;
    };
    match store(&files, trimmed) {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Drops a directory's files when its kobject is released.
///
/// # Safety
///
/// `data` must be the `Arc<T>` (foreign pointer) of a `Dir<T>` whose kobject is being
/// released; it is not used again.
unsafe fn release_files<T: Files>(data: *mut c_void) {
    // SAFETY: `data` came from `Arc::into_foreign` in `Dir::new`; this is its last use.
    drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(data) });
}
