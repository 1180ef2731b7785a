// SPDX-License-Identifier: GPL-2.0

//! Directories under `/sys/kernel` whose files Rust implements (kobjects with attribute
//! groups).
//!
//! The `kernel` crate has no kobject or sysfs support. A [`Dir`] is one kobject with a
//! C `kobj_type` (in `helpers.c`) that forwards every `show` and `store`, with the file's
//! number, to the file table of its data's type (a [`Files`] implementation). The kobject
//! holds a reference (`Arc`) to that data, released with the kobject's last reference: sysfs keeps the kobject alive while a callback runs and removing a
//! directory waits for running callbacks, so a file held open across the removal of its
//! device is safe (it then fails with `ENODEV`).
//!
//! Attribute tables ([`AttrTables`]) are built once from static definitions and must
//! outlive every directory that uses them (the module keeps them).

use crate::rust::bindings;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Largest output of a `show` (the sysfs buffer is one page).
const SHOW_MAX: usize = kernel::page::PAGE_SIZE;

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

/// C attribute and group tables built from a [`Files`] implementation's groups.
///
/// # Invariants
///
/// The vectors are never resized after construction, so the pointers between them (and
/// handed to sysfs) stay valid until drop.
pub(crate) struct AttrTables {
    // Only kept: sysfs reads them through `group_ptrs`.
    _attrs: KVec<bindings::dmr_attribute>,
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
            // SAFETY: All-zero is a valid `struct dmr_attribute` (NULL name, mode 0).
            let mut c: bindings::dmr_attribute = unsafe { core::mem::zeroed() };
            c.attr.name = f.name.as_char_ptr();
            c.attr.mode = f.mode();
            c.id = u32::try_from(id).map_err(|_| EINVAL)?;
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

/// A directory in sysfs, removed on drop.
///
/// # Invariants
///
/// `k` is a live `dmr_kobj` whose data is an `Arc<T>` turned into a raw pointer; this
/// value holds the reference taken at creation.
pub(crate) struct Dir<T: Files> {
    k: NonNull<bindings::dmr_kobj>,
    _t: core::marker::PhantomData<Arc<T>>,
}

// SAFETY: Removing a kobject (drop) may happen on any thread, and the `Arc<T>` it releases
// may be dropped on any thread because `T: Send + Sync`.
unsafe impl<T: Files> Send for Dir<T> {}
// SAFETY: The `&self` methods (`rename`, `notify`) call `kobject_rename` and `sysfs_notify`,
// which take the kernfs locks themselves and may run concurrently.
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
        let data = Arc::into_raw(files).cast::<c_void>();
        let mut err: c_int = 0;
        // SAFETY: `name` is NUL-terminated (copied by the kobject); the group list is
        // NULL-terminated and outlives the directory (caller's promise); `data` is an
        // `Arc<T>` that the kobject owns on success; the callbacks match `T`.
        let k = unsafe {
            bindings::dmr_kobj_create(
                parent.map_or(core::ptr::null_mut(), |p| p.k.as_ptr()),
                name.as_char_ptr(),
                tables.group_ptrs.as_ptr(),
                data,
                Some(show_cb::<T>),
                Some(store_cb::<T>),
                Some(release_cb::<T>),
                &mut err,
            )
        };
        match NonNull::new(k) {
            // INVARIANT: `dmr_kobj_create` succeeded: `k` is live, holds `data` (the
            // `Arc<T>` made above) and its first reference is now ours.
            Some(k) => Ok(Self {
                k,
                _t: core::marker::PhantomData,
            }),
            None => {
                // SAFETY: On failure the data stays ours: the `Arc` made above.
                drop(unsafe { Arc::from_raw(data.cast::<T>()) });
                Err(Error::from_errno(err))
            }
        }
    }

    /// Renames the directory. Sleeps.
    pub(crate) fn rename(&self, name: &CStr) -> Result {
        // SAFETY: `k` is live; `name` is NUL-terminated and copied.
        kernel::error::to_result(unsafe {
            bindings::dmr_kobj_rename(self.k.as_ptr(), name.as_char_ptr())
        })
    }

    /// Wakes `poll()`ers of file `attr` in subdirectory `group`. Sleeps.
    pub(crate) fn notify(&self, group: &CStr, attr: &CStr) {
        // SAFETY: `k` is live; both names are NUL-terminated.
        unsafe {
            bindings::dmr_kobj_notify(self.k.as_ptr(), group.as_char_ptr(), attr.as_char_ptr())
        };
    }
}

impl<T: Files> Drop for Dir<T> {
    fn drop(&mut self) {
        // SAFETY: `k` is live and this drops the reference taken at creation.
        unsafe { bindings::dmr_kobj_remove(self.k.as_ptr()) };
    }
}

/// Waits until every directory's kobject has been released (its release may come after
/// the directory was removed and runs this module's code). For module unload, after every
/// [`Dir`] was dropped. Sleeps.
pub(crate) fn wait_all_released() {
    // SAFETY: No preconditions.
    unsafe { bindings::dmr_kobj_wait_released() };
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

/// # Safety
///
/// Called by sysfs with the data of a live `Dir<T>` and a page-sized buffer.
unsafe extern "C" fn show_cb<T: Files>(
    data: *const c_void,
    id: c_uint,
    buf: *mut c_char,
) -> c_long {
    // SAFETY: The kobject holds a reference to the `Arc<T>` `data` came from, and sysfs
    // keeps the kobject alive during the call.
    let files = unsafe { &*data.cast::<T>() };
    // SAFETY: sysfs passes a buffer of `PAGE_SIZE` bytes, ours for the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), SHOW_MAX) };
    let mut out = ShowBuf { buf, len: 0 };
    let Some(show) = file::<T>(id).and_then(|f| f.show) else {
        // A write-only file opened for reading by root.
        return EACCES.to_errno() as c_long;
    };
    match show(files, &mut out) {
        Ok(()) => out.len as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called by sysfs with the data of a live `Dir<T>` and `len` readable bytes at `buf`.
unsafe extern "C" fn store_cb<T: Files>(
    data: *const c_void,
    id: c_uint,
    buf: *const c_char,
    len: usize,
) -> c_long {
    // SAFETY: `data` is the `Arc<T>` the kobject holds until its release, and sysfs keeps
    // the kobject alive while a `store` runs.
    let files = unsafe { &*data.cast::<T>() };
    // SAFETY: sysfs passes `len` bytes at `buf`, valid for the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    // `echo` appends one newline; anything else is part of the value.
    let trimmed = input.strip_suffix(b"\n").unwrap_or(input);
    let Some(store) = file::<T>(id).and_then(|f| f.store) else {
        return EACCES.to_errno() as c_long;
    };
    match store(files, trimmed) {
        Ok(()) => len as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called once, by the kobject's release, with the data a `Dir<T>` was created with.
unsafe extern "C" fn release_cb<T: Files>(data: *const c_void) {
    // SAFETY: `data` came from `Arc::into_raw` in `Dir::new`; this is its last use.
    drop(unsafe { Arc::from_raw(data.cast::<T>()) });
}
