//! One persistent helper thread that runs half of a large few-row product on the second core.
//!
//! The Feedback step's products take 10–100 µs each; waking a pool worker (rayon) costs tens
//! of µs, which ate the gain when the products were split that way (docs/performance.md). The
//! helper instead spins for a while after each job, so the next product of the same step finds
//! it awake: posting a job is one atomic increment, and the caller waits for it by spinning on
//! another. After [`IDLE_SPIN`] without work it yields its core between polls, and after
//! [`IDLE_YIELD`] it parks, so an idle process holds no core.
//!
//! One caller at a time: a product that finds the helper taken (another thread's product)
//! runs on its own thread. `MNEMO_KERNEL_THREADS=1`, or a machine with one core, switches the
//! helper off.
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins for the next job before it yields between polls.
const IDLE_SPIN: Duration = Duration::from_micros(100);

/// How long the helper polls for the next job, yielding its core to any other runnable
/// thread between polls (burn's GEMM workers), before it parks: a step whose products are
/// further apart than [`IDLE_SPIN`] (decoding: sampling between steps) still finds it awake,
/// without a wake-up through the kernel.
const IDLE_YIELD: Duration = Duration::from_micros(1000);

/// A job: a borrowed closure whose lifetime the poster guarantees (it waits for the job).
type Job = *const (dyn Fn() + Sync);

struct Shared {
    /// Bumped by the poster after it wrote `job`: the helper runs a job per new value.
    posted: AtomicU64,
    /// The last `posted` value whose job was claimed, by the helper or taken back by its
    /// poster: whoever moves it from `n - 1` to `n` runs job `n`.
    claimed: AtomicU64,
    /// The last `posted` value whose job the helper has finished.
    finished: AtomicU64,
    /// The job of the latest `posted`; written only while `taken` is held and the helper is
    /// between jobs.
    job: UnsafeCell<Option<Job>>,
    /// Held by the one caller that may post.
    taken: AtomicBool,
    /// Whether the helper is (about to be) parked.
    parked: AtomicBool,
    /// Whether a job panicked (the poster panics in turn).
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the holder of `taken` while no job is in flight (after
// `finished` caught up with `posted`), and read only by the helper after it saw a new `posted`
// value (Acquire, paired with the poster's SeqCst increment after the write): the accesses never
// overlap. Every other field is atomic.
unsafe impl Sync for Shared {}

/// The helper thread and what it shares with posters.
pub(crate) struct Helper {
    shared: &'static Shared,
    thread: Thread,
}

impl Helper {
    /// The process's helper, started on first use; None with one core or
    /// `MNEMO_KERNEL_THREADS=1`.
    pub(crate) fn get() -> Option<&'static Helper> {
        static HELPER: OnceLock<Option<Helper>> = OnceLock::new();
        HELPER.get_or_init(Helper::start).as_ref()
    }

    fn start() -> Option<Helper> {
        let threads = match std::env::var("MNEMO_KERNEL_THREADS") {
            Ok(v) => v.trim().parse::<usize>().unwrap_or(2),
            Err(_) => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if threads < 2 {
            return None;
        }
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            posted: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            taken: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        }));
        let handle = thread::Builder::new()
            .name("mnemo-kernels-helper".into())
            .spawn(move || serve(shared))
            .ok()?;
        Some(Helper {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// Run `theirs` on the helper and `mine` on this thread, and return when both are done.
    /// If the helper has not started `theirs` when `mine` is done (e.g. other processes hold
    /// the cores), this thread takes it back and runs it itself. Returns false without running
    /// either when another thread holds the helper.
    ///
    /// # Panics
    /// If `theirs` panicked on the helper.
    pub(crate) fn join(&self, theirs: &(dyn Fn() + Sync), mine: impl FnOnce()) -> bool {
        let Some(mut pending) = self.post(theirs) else {
            return false;
        };
        mine();
        pending.settle();
        pending.finish();
        true
    }

    /// Run `theirs` on the helper and, once the helper has started it, `mine` on this thread
    /// (for two parts that wait for each other, [`crate::pair`]); return `mine`'s result when
    /// both are done. If the helper has not started `theirs` within `wait`, take it back and
    /// return None without running either; None too when another thread holds the helper.
    ///
    /// # Panics
    /// If `theirs` panicked on the helper.
    pub(crate) fn join_started<R>(
        &self,
        theirs: &(dyn Fn() + Sync),
        wait: Duration,
        mine: impl FnOnce() -> R,
    ) -> Option<R> {
        let mut pending = self.post(theirs)?;
        let s = self.shared;
        let since = Instant::now();
        let mut spins = 0u32;
        while s.claimed.load(Ordering::Acquire) != pending.n {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && since.elapsed() > wait && claim(s, pending.n) {
                // Taken back: the helper will never run it.
                pending.run_taken_back = None;
                return None;
            }
            std::hint::spin_loop();
        }
        // The helper runs `theirs`: wait for it however this thread leaves.
        let r = mine();
        pending.settle();
        pending.finish();
        Some(r)
    }

    /// Post `theirs` as the helper's next job, or None when another thread holds the helper.
    fn post<'a>(&self, theirs: &'a (dyn Fn() + Sync)) -> Option<Pending<'a>> {
        let s = self.shared;
        if s.taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: (lifetime) the pointer is used by the helper only until `finished` reaches
        // this job's number, and the returned guard waits for that (in `settle` or when
        // dropped) before `theirs` can go, so `theirs` outlives every use. The transmute only
        // erases that lifetime.
        let job: Job = unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync)>(theirs)
        };
        // SAFETY: we hold `taken` and the previous job has finished, so the helper does not
        // read `job` now (see `impl Sync for Shared`).
        unsafe { *s.job.get() = Some(job) };
        let n = s.posted.fetch_add(1, Ordering::SeqCst) + 1;
        if s.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        // From here until the helper is done with job n (or it is taken back) the borrows in
        // `theirs` must live: the guard waits for that even if the caller unwinds.
        Some(Pending {
            s,
            n,
            run_taken_back: Some(theirs),
        })
    }
}

thread_local! {
    /// Set inside [`on_this_core`]: this thread's work is not split.
    static ONE_CORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with every split of this crate inside it (products, windows, updates) kept on the
/// calling thread, for callers that already keep every core busy with threads of their own.
pub(crate) fn on_this_core<R>(f: impl FnOnce() -> R) -> R {
    let before = ONE_CORE.replace(true);
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ONE_CORE.set(self.0);
        }
    }
    let _restore = Restore(before);
    f()
}

/// Whether work on this thread may split over the helper (there is one, and the thread is not
/// inside [`on_this_core`]).
pub(crate) fn may_split() -> bool {
    !ONE_CORE.get() && Helper::get().is_some()
}

/// Run `mine` here and `theirs` on the helper thread at once, or both here one after the other
/// when there is no helper, another thread holds it or this thread is inside
/// [`on_this_core`]; returns when both are done.
pub(crate) fn both(mine: impl FnOnce(), theirs: impl FnOnce() + Send) {
    let theirs = Mutex::new(Some(theirs));
    let job = || {
        let f = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f();
        }
    };
    let mut mine = Some(mine);
    let split = !ONE_CORE.get()
        && Helper::get().is_some_and(|h| {
            h.join(&job, || {
                if let Some(f) = mine.take() {
                    f()
                }
            })
        });
    if !split {
        if let Some(f) = mine.take() {
            f();
        }
        job();
    }
}

/// Job `n` posted by the holder of `taken`: settled (taken back and run here, or waited for)
/// before the poster returns or unwinds; dropping it releases `taken`.
struct Pending<'a> {
    s: &'static Shared,
    n: u64,
    /// The job, to run here if taken back; None once settled (or when unwinding: then a
    /// taken-back job is dropped unrun).
    run_taken_back: Option<&'a (dyn Fn() + Sync)>,
}

impl Pending<'_> {
    /// Take job n back if the helper has not claimed it (and run it here), else wait until
    /// the helper has finished it.
    fn settle(&mut self) {
        if let Some(job) = self.run_taken_back.take() {
            match claim(self.s, self.n) {
                true => job(), // the helper will find it claimed and never read its pointer
                false => self.wait(),
            }
        }
    }

    /// Release the helper (dropping the guard) and panic if its job panicked.
    fn finish(self) {
        let panicked = self.s.panicked.swap(false, Ordering::Relaxed);
        drop(self);
        assert!(!panicked, "a mnemo-kernels helper job panicked");
    }

    /// Until the helper has finished job n.
    fn wait(&self) {
        spin_until(|| self.s.finished.load(Ordering::Acquire) == self.n);
    }
}

/// Spins before a waiting thread yields its core between looks.
const SPINS_BEFORE_YIELD: u32 = 20_000;

/// Spin until `done`, then, if it takes long (the other thread runs but is descheduled), yield
/// this core between looks so that it can run.
pub(crate) fn spin_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins = spins.saturating_add(1);
        match spins < SPINS_BEFORE_YIELD {
            true => std::hint::spin_loop(),
            false => thread::yield_now(),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        // Unwinding before `settle`: claim the job so the helper never starts it, or wait for
        // the helper to finish it; either way its borrows are no longer used.
        if self.run_taken_back.is_some() && !claim(self.s, self.n) {
            self.wait();
        }
        // A job that panicked while this thread unwinds too (the two halves of a pair) is
        // reported by the unwinding: clear the flag for the next poster.
        self.s.panicked.store(false, Ordering::Relaxed);
        self.s.taken.store(false, Ordering::Release);
    }
}

/// Claim job `n` (move `claimed` from `n - 1` to `n`): true for the one caller, helper or
/// poster, that is to run it.
fn claim(s: &Shared, n: u64) -> bool {
    s.claimed
        .compare_exchange(n - 1, n, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// The helper's loop: wait for a new job (spinning, then parked), run it, mark it finished.
fn serve(s: &'static Shared) {
    let mut seen = 0u64;
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        loop {
            let n = s.posted.load(Ordering::Acquire);
            if n != seen {
                seen = n;
                break;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let idle = since.elapsed();
            if idle < IDLE_SPIN {
                std::hint::spin_loop();
                continue;
            }
            if idle < IDLE_YIELD {
                thread::yield_now();
                continue;
            }
            // Park unless a job came in meanwhile; a poster that saw `parked` unparks us
            // (an unpark before the park makes the park return at once).
            s.parked.store(true, Ordering::SeqCst);
            if s.posted.load(Ordering::SeqCst) == seen {
                thread::park();
            }
            s.parked.store(false, Ordering::SeqCst);
            since = Instant::now();
        }
        if !claim(s, seen) {
            continue; // its poster took it back: the pointer may be gone already
        }
        // SAFETY: the poster wrote `job` before bumping `posted` (seen above with Acquire),
        // and having claimed the job we are the only one to run it: the poster waits for
        // `finished` to reach `seen`, keeping the closure alive until then.
        let job = unsafe { (*s.job.get()).expect("a posted job") };
        // SAFETY: as above: the closure outlives this call.
        let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
        if ran.is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.finished.store(seen, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inside `on_this_core` both halves of a split run on the calling thread (nested calls
    /// too); after it, on a machine with a helper, the second half runs on the helper again.
    #[test]
    fn on_this_core_keeps_both_halves_here() {
        let here = thread::current().id();
        let threads = || {
            let ids = Mutex::new(Vec::new());
            both(
                || {
                    // Long enough for the helper to claim its half before it is taken back.
                    thread::sleep(Duration::from_millis(2));
                    ids.lock().unwrap().push(thread::current().id())
                },
                || ids.lock().unwrap().push(thread::current().id()),
            );
            ids.into_inner().unwrap()
        };
        on_this_core(|| {
            assert_eq!(threads(), [here, here]);
            on_this_core(|| assert!(!may_split()));
            assert_eq!(threads(), [here, here], "the nested call restored the flag");
        });
        if Helper::get().is_some() {
            // The helper may be held by another test's product: then both run here too.
            let split = (0..50).any(|_| threads().iter().any(|&id| id != here));
            assert!(
                split,
                "outside on_this_core the helper took no half in 50 tries"
            );
        }
    }
}
