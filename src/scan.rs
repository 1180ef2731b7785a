// SPDX-License-Identifier: GPL-2.0

//! The background scanner's shared state ([`Scan`]): settings, counters, run state and
//! the target that runs it. It is kept with the remap table (`table.rs`), so a table
//! reload keeps it; the scan itself is `scanner.rs`, run by the live target.
//!
//! Commands (`scanner/control`, `dmsetup message ... scan`) only change the state here and
//! wake or queue the scan work; the work reads the state between chunks and between the
//! blocks of a chunk it reads block by block, so it stops within one chunk read (or one
//! block's judgement). A target attaches when it resumes and detaches when it is suspended or
//! destroyed ([`Scan::attach`], [`Scan::detach`]); while none is attached nothing runs, and
//! a running scan goes on when the next target resumes.

use crate::clock::now_ns;
use crate::logic::format::{ScanCursor, ScanState};
use crate::logic::scan::{eta_s, Command, RateRing, Setting, Settings};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::time::msecs_to_jiffies;

/// What runs the scan for a target ([`Scan::attach`]).
pub(crate) trait ScanHost: Send + Sync {
    /// Queues the scan work (nothing if it is queued or running).
    fn kick(&self);
}

/// What the scan work does next ([`Scan::next_step`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Step {
    /// Scan the next chunk.
    Scan,
    /// Nothing to do now; wait this long (ns) for a command or the next automatic pass
    /// ([`Scan::wait`] with the generation given here).
    Wait(u64, u64),
    /// Not this host's to run (detached, or idle with no automatic pass): save and return.
    Exit,
}

/// The state commands change, under the lock.
struct Control {
    state: ScanState,
    /// The attached target: its identity and how to queue its work.
    host: Option<(usize, Arc<dyn ScanHost>)>,
    settings: Settings,
    /// Bytes scanned against running time, for `rate_kib_s`.
    rate: RateRing,
    /// Running time accumulated (ns), and when it was last added to.
    run_ns: u64,
    run_mark: Option<u64>,
    /// When the next automatic pass starts (monotonic ns), with `interval_hours`.
    next_pass_ns: Option<u64>,
    /// Bumped by every command, setting and detach: a wait that began before one returns
    /// at once (its wake-up may have come while the work was not waiting yet).
    generation: u64,
}

impl Control {
    /// The time between automatic passes, if any (`interval_hours`).
    fn interval_ns(&self) -> Option<u64> {
        let hours = self.settings.interval_hours;
        (hours > 0).then(|| hours * 3_600_000_000_000)
    }

    /// Whether target `id` is attached.
    fn attached(&self, id: usize) -> bool {
        self.host.as_ref().is_some_and(|(h, _)| *h == id)
    }
}

/// The scanner's state, shared by the targets of one remap table.
#[pin_data]
pub(crate) struct Scan {
    #[pin]
    control: Mutex<Control>,
    /// Wakes the work out of a wait when a command arrives or it is detached.
    #[pin]
    wake: CondVar,
    /// Next main block to scan.
    pub(crate) position: Atomic<u64>,
    /// Completed passes.
    pub(crate) passes: Atomic<u64>,
    /// Since the table was loaded: blocks read (main and spare), unreadable blocks found,
    /// slow blocks found, blocks relocated, and bytes read.
    pub(crate) blocks_scanned: Atomic<u64>,
    pub(crate) unreadable: Atomic<u64>,
    pub(crate) slow: Atomic<u64>,
    pub(crate) relocated: Atomic<u64>,
    pub(crate) bytes: Atomic<u64>,
    /// Main blocks of the attached target (for the ETA).
    pub(crate) blocks: Atomic<u64>,
    /// Bytes of a block.
    block_bytes: u64,
}

impl Scan {
    /// An idle scanner for blocks of `block_bytes`, with the default settings.
    pub(crate) fn new(block_bytes: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            control <- new_mutex!(Control {
                state: ScanState::Idle,
                host: None,
                settings: Settings::default(),
                rate: RateRing::default(),
                run_ns: 0,
                run_mark: None,
                next_pass_ns: None,
                generation: 0,
            }),
            wake <- new_condvar!(),
            position: Atomic::new(0),
            passes: Atomic::new(0),
            blocks_scanned: Atomic::new(0),
            unreadable: Atomic::new(0),
            slow: Atomic::new(0),
            relocated: Atomic::new(0),
            bytes: Atomic::new(0),
            blocks: Atomic::new(0),
            block_bytes: u64::from(block_bytes),
        })
    }

    /// Takes the cursor saved in the metadata (at load): position, passes and run state;
    /// a scan that was running or paused goes on as such when a target attaches.
    pub(crate) fn restore(&self, c: ScanCursor) {
        self.position.store(c.position, Relaxed);
        self.passes.store(u64::from(c.passes), Relaxed);
        self.control.lock().state = c.state;
    }

    /// The cursor to save: position, passes, run state.
    pub(crate) fn cursor(&self) -> ScanCursor {
        ScanCursor {
            position: self.position.load(Relaxed),
            passes: self.passes.load(Relaxed).min(u64::from(u32::MAX)) as u32,
            state: self.state(),
        }
    }

    /// `idle`, `running` or `paused`.
    pub(crate) fn state(&self) -> ScanState {
        self.control.lock().state
    }

    /// The settings.
    pub(crate) fn settings(&self) -> Settings {
        self.control.lock().settings
    }

    /// Sets `which` to the written `input`; a bad value is refused and nothing changes.
    pub(crate) fn set(&self, which: Setting, input: &[u8]) -> Result<(), &'static CStr> {
        let mut c = self.control.lock();
        c.settings = c.settings.with(which, input)?;
        c.generation += 1;
        if which == Setting::Interval {
            c.next_pass_ns = None;
            if c.state == ScanState::Idle && c.settings.interval_hours > 0 {
                Self::kick(&c);
            }
        }
        // A waiting work looks at the new throttle or interval at once.
        self.wake.notify_all();
        Ok(())
    }

    /// Carries out a command; a command that does not apply in the current state (pause an
    /// idle scan, resume one that is not paused) is refused.
    pub(crate) fn command(&self, cmd: Command) -> Result<(), &'static CStr> {
        let mut c = self.control.lock();
        let now = now_ns();
        let next = match (cmd, c.state) {
            (Command::Start, ScanState::Running) => return Ok(()),
            (Command::Start | Command::Resume, ScanState::Paused)
            | (Command::Start, ScanState::Idle) => ScanState::Running,
            (Command::Resume, _) => return Err(c"scan: resume: the scan is not paused"),
            (Command::Pause, ScanState::Running) => ScanState::Paused,
            (Command::Pause, _) => return Err(c"scan: pause: the scan is not running"),
            (Command::Stop, _) => ScanState::Idle,
        };
        Self::account(&mut c, now);
        if c.state == ScanState::Idle && next == ScanState::Running {
            // A new run: the rate is measured afresh.
            c.rate.clear();
        }
        c.state = next;
        c.generation += 1;
        c.next_pass_ns = None;
        c.run_mark = (next == ScanState::Running).then_some(now);
        // The work saves the new state (and, stopped or paused, returns); a detached
        // scanner saves it when a target attaches.
        Self::kick(&c);
        self.wake.notify_all();
        Ok(())
    }

    /// Adds the running time since the last mark.
    fn account(c: &mut Control, now: u64) {
        if let Some(mark) = c.run_mark {
            c.run_ns += now.saturating_sub(mark);
            c.run_mark = Some(now);
        }
    }

    fn kick(c: &Control) {
        if let Some((_, h)) = &c.host {
            h.kick();
        }
    }

    /// Attaches the target identified by `id` (its resume): its work runs the scan from now
    /// on, and is queued at once (to go on with a running scan, or to save a state
    /// changed while no target was attached).
    pub(crate) fn attach(&self, id: usize, host: Arc<dyn ScanHost>, blocks: u64) {
        self.blocks.store(blocks, Relaxed);
        let old = {
            let mut c = self.control.lock();
            let now = now_ns();
            c.run_mark = (c.state == ScanState::Running).then_some(now);
            c.generation += 1;
            host.kick();
            c.host.replace((id, host))
        };
        // Dropped outside the lock (a table shared by two live targets cannot happen: the
        // old one detached at its suspend).
        drop(old);
    }

    /// Detaches target `id` (its suspend or destruction): its work returns within a chunk;
    /// the caller then waits for it (flushes its queue). Nothing if `id` is not attached.
    pub(crate) fn detach(&self, id: usize) {
        let host = {
            let mut c = self.control.lock();
            if !c.attached(id) {
                return;
            }
            let now = now_ns();
            Self::account(&mut c, now);
            c.run_mark = None;
            c.generation += 1;
            self.wake.notify_all();
            c.host.take()
        };
        // Dropped outside the lock.
        drop(host);
    }

    /// What the work of target `id` does next. Called between chunks; also accounts the
    /// running time and records the rate.
    pub(crate) fn next_step(&self, id: usize) -> Step {
        let mut c = self.control.lock();
        if !c.attached(id) {
            return Step::Exit;
        }
        let now = now_ns();
        Self::account(&mut c, now);
        let bytes = self.bytes.load(Relaxed);
        let run_ns = c.run_ns;
        c.rate.record(run_ns, bytes);
        match c.state {
            ScanState::Running => Step::Scan,
            ScanState::Paused => Step::Exit,
            ScanState::Idle => {
                let Some(interval) = c.interval_ns() else {
                    return Step::Exit;
                };
                let at = *c.next_pass_ns.get_or_insert(now.saturating_add(interval));
                if now < at {
                    return Step::Wait(at - now, c.generation);
                }
                // An automatic pass.
                c.state = ScanState::Running;
                c.next_pass_ns = None;
                c.rate.clear();
                c.run_mark = Some(now);
                Step::Scan
            }
        }
    }

    /// A pass ended: the scan goes idle (unless a command paused it meanwhile); with
    /// `interval_hours`, the next pass starts that long from now.
    pub(crate) fn pass_done(&self) {
        self.end_run(false);
    }

    /// Stops the scan (a device error it cannot judge blocks through, no memory); with
    /// `interval_hours` the next automatic pass still comes.
    pub(crate) fn abort(&self) {
        self.end_run(true);
    }

    /// Ends a run: idle (a paused scan stays paused unless `always`), the next automatic
    /// pass due `interval_hours` from now.
    fn end_run(&self, always: bool) {
        let mut c = self.control.lock();
        let now = now_ns();
        Self::account(&mut c, now);
        if always || c.state == ScanState::Running {
            c.state = ScanState::Idle;
            c.run_mark = None;
        }
        c.next_pass_ns = c.interval_ns().map(|i| now.saturating_add(i));
    }

    /// Whether target `id` should go on with the scan (attached, running, and nothing
    /// changed since `generation`): checked between blocks, so that a suspend or a command
    /// does not wait for a whole chunk of slow blocks.
    pub(crate) fn keep_going(&self, id: usize, generation: u64) -> bool {
        let c = self.control.lock();
        c.attached(id) && c.state == ScanState::Running && c.generation == generation
    }

    /// The current generation (see [`Scan::keep_going`]).
    pub(crate) fn generation(&self) -> u64 {
        self.control.lock().generation
    }

    /// Waits up to `ns` for a command, a setting or a detach, while target `id` is
    /// attached and nothing changed since `generation`. Sleeps.
    pub(crate) fn wait(&self, id: usize, ns: u64, generation: u64) {
        let mut c = self.control.lock();
        if !c.attached(id) || c.generation != generation {
            return;
        }
        let ms = (ns / 1_000_000).clamp(1, u64::from(u32::MAX)) as u32;
        // Woken early, or by a signal (a kworker gets none): the caller looks again.
        let _ = self
            .wake
            .wait_interruptible_timeout(&mut c, msecs_to_jiffies(ms));
    }

    /// KiB/s over the last 30 s of running time (`None`: not enough running time yet).
    pub(crate) fn rate_kib_s(&self) -> Option<u64> {
        let mut c = self.control.lock();
        Self::account(&mut c, now_ns());
        c.rate.rate_kib_s(c.run_ns, self.bytes.load(Relaxed))
    }

    /// Seconds until the pass ends at the current rate (`None`: no rate yet, or idle).
    pub(crate) fn eta_s(&self) -> Option<u64> {
        if self.state() == ScanState::Idle {
            return None;
        }
        let left = self
            .blocks
            .load(Relaxed)
            .saturating_sub(self.position.load(Relaxed));
        eta_s(left * self.block_bytes, self.rate_kib_s())
    }
}
