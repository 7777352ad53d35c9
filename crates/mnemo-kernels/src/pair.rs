//! One computation run by two threads in lockstep, each on its half of every product, trading
//! their halves through a board ([`Half::exchange`]).
//!
//! Splitting each product of a decoding step with the helper (`crate::helper::both`) costs a
//! hand-off per product (posting, claiming, waiting: ~0.5–1 µs each) and leaves the helper idle
//! while the calling thread does everything between the products (norms, activations, the
//! attention's bookkeeping). In a pair both threads run the whole step: each computes its columns
//! of every product, posts them on the board and reads the other half's, and both do the cheap
//! row-wise work between products themselves. One exchange is one wait for the other thread.
//!
//! With no helper (one core, `MNEMO_KERNEL_THREADS=1`, inside [`crate::on_this_core`], or the
//! helper busy with another thread's work) the same closure runs once, as the only part, and
//! every exchange just hands its own part back.
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::helper::{self, Helper};

/// How long the calling thread waits for the helper to start its half before it runs the
/// whole computation alone (the helper may be descheduled when other processes hold the cores).
const START_WAIT: Duration = Duration::from_micros(200);

/// What the two halves share: two slots per half, used alternately by successive exchanges,
/// and how many exchanges each half has posted.
struct Board {
    /// `slots[half][e % 2]`: what `half` posted at its exchange `e`.
    slots: [[UnsafeCell<Vec<f32>>; 2]; 2],
    /// `posted[half]`: the number of exchanges `half` has posted (stored after its slot is
    /// written).
    posted: [AtomicU64; 2],
    /// Set when a half unwinds: the other stops waiting and panics too.
    abandoned: AtomicBool,
}

// SAFETY: a slot `slots[h][p]` is written only by half `h`, at its exchanges `e ≡ p (mod 2)`,
// and read by the other half only during its exchange `e` (after it saw `posted[h] ≥ e`,
// Acquire, paired with the Release store after the write). Half h writes that slot again at
// exchange `e + 2` only after it saw `posted[other] ≥ e + 1`, which the other stores only after
// its reads of exchange `e` are done (program order). Reads and writes of a slot never overlap;
// the atomics are Sync.
unsafe impl Sync for Board {}

impl Board {
    fn new() -> Self {
        let slot = || UnsafeCell::new(Vec::new());
        Self {
            slots: [[slot(), slot()], [slot(), slot()]],
            posted: [AtomicU64::new(0), AtomicU64::new(0)],
            abandoned: AtomicBool::new(false),
        }
    }
}

/// One of the parts of an [`in_pair`] computation, as the closure sees it: which part it is,
/// of how many, and the board its exchanges go through. Not `Send` or `Sync`: each half stays
/// on the thread that runs it.
pub struct Half<'a> {
    index: usize,
    parts: usize,
    board: &'a Board,
    /// Exchanges this half has made.
    exchanges: Cell<u64>,
    _here: PhantomData<*const ()>,
}

impl Half<'_> {
    /// This part's index: 0 on the calling thread, 1 on the helper.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many parts run: 2 with the helper, 1 alone.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// This part's share of `0..n` items taken in blocks of `block`: the first `⌊blocks/2⌋`
    /// blocks for part 0, the rest for part 1 (all of `0..n` alone), as
    /// [`PackedMatrix::part_columns`](crate::PackedMatrix::part_columns) splits columns.
    pub fn share(&self, n: usize, block: usize) -> Range<usize> {
        share(n, block, self.index, self.parts)
    }

    /// Post this part (`fill` writes it into an emptied buffer) and read every part in order
    /// (`read` gets one slice per part: two in a pair, this part's alone). Both halves must
    /// make the same sequence of exchanges; the call returns once the other half has posted
    /// its part of the same exchange.
    ///
    /// # Panics
    /// If the other half panicked (instead of waiting for it forever).
    pub fn exchange<R>(
        &self,
        fill: impl FnOnce(&mut Vec<f32>),
        read: impl FnOnce(&[&[f32]]) -> R,
    ) -> R {
        let e = self.exchanges.get() + 1;
        self.exchanges.set(e);
        let b = self.board;
        let (me, parity) = (self.index, (e % 2) as usize);
        // SAFETY: see `impl Sync for Board`: this half alone writes its slot of this parity,
        // and the other half read it last at exchange e − 2, finished before it posted e − 1,
        // which this half saw at its exchange e − 1 (or e ≤ 2 and it was never read).
        let mine = unsafe { &mut *b.slots[me][parity].get() };
        mine.clear();
        fill(mine);
        if self.parts == 1 {
            return read(&[mine.as_slice()]);
        }
        b.posted[me].store(e, Ordering::Release);
        let other = 1 - me;
        wait_for(b, || b.posted[other].load(Ordering::Acquire) >= e);
        // SAFETY: the other half posted exchange e (Acquire above): its slot of this parity is
        // written and is not written again before this half posts e + 1.
        let theirs = unsafe { &*b.slots[other][parity].get() };
        // SAFETY: this half's own slot, written above; the other half only reads it now.
        let mine = unsafe { &*b.slots[me][parity].get() };
        match me {
            0 => read(&[mine, theirs]),
            _ => read(&[theirs, mine]),
        }
    }
}

/// Part `part` of `parts` of `0..n` in blocks of `block` (see [`Half::share`]).
pub(crate) fn share(n: usize, block: usize, part: usize, parts: usize) -> Range<usize> {
    if parts == 1 {
        return 0..n;
    }
    let mid = (n.div_ceil(block.max(1)) / 2 * block).min(n);
    match part {
        0 => 0..mid,
        _ => mid..n,
    }
}

/// Spin (then yield) until `done`; panics if the other half abandoned the computation.
fn wait_for(b: &Board, done: impl Fn() -> bool) {
    helper::spin_until(|| done() || b.abandoned.load(Ordering::Relaxed));
    assert!(done(), "the other half of a mnemo-kernels pair panicked");
}

/// Marks the board abandoned if the half holding it unwinds.
struct Abandon<'a>(&'a Board);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

/// Run `f` as part 0 here and as part 1 on the helper thread at once, or as the only part here
/// when there is no helper to be had (see the [module docs](self)); returns part 0's result.
///
/// # Panics
/// If either part panicked.
pub fn in_pair<R>(f: impl Fn(&Half) -> R + Sync) -> R {
    in_pair_waiting(START_WAIT, f)
}

/// [`in_pair`], waiting up to `start_wait` (instead of 200 µs) for the helper to start its
/// part before running alone: a test that must see two parts on a loaded machine waits long.
///
/// # Panics
/// If either part panicked.
pub fn in_pair_waiting<R>(start_wait: Duration, f: impl Fn(&Half) -> R + Sync) -> R {
    let board = Board::new();
    let run = |index: usize, parts: usize| {
        let half = Half {
            index,
            parts,
            board: &board,
            exchanges: Cell::new(0),
            _here: PhantomData,
        };
        let _abandon = Abandon(&board);
        f(&half)
    };
    if helper::may_split()
        && let Some(h) = Helper::get()
    {
        let theirs = || {
            run(1, 2);
        };
        if let Some(r) = h.join_started(&theirs, start_wait, || run(0, 2)) {
            return r;
        }
    }
    run(0, 1)
}
