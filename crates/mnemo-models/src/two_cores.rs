//! Two independent pieces of a backward on the two cores at once, each in a one-thread rayon
//! pool of its own: burn's CPU ops and GEMMs inside a piece stay on that piece's thread (a GEMM
//! split over the global pool would make the two wait on each other's rayon jobs, and a GEMM
//! of a few hundred rows gains less from two threads than two GEMMs side by side), and
//! `mnemo_kernels`' helper is off inside them (it would only take turns with the other
//! piece). Used by the Transformer's batch halves and the Feedback model's weight gradients.

/// Run `first` on this thread's turn and `second` on a scoped thread at once, as pieces 0 and
/// 1 ([`as_piece`]); return both results.
///
/// # Panics
/// If `second` panicked (with its message).
pub(crate) fn on_two_cores<A: Send, B: Send>(
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(|| as_piece(1, second));
        let a = as_piece(0, first);
        match other.join() {
            Ok(b) => (a, b),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Run `f` as piece `i` (0 or 1): in the one-thread rayon pool of that piece, with
/// `mnemo_kernels`' splits kept on its thread.
fn as_piece<R: Send>(i: usize, f: impl FnOnce() -> R + Send) -> R {
    piece_pool(i).install(|| mnemo_kernels::on_this_core(f))
}

/// The one-thread rayon pool of piece `i`.
fn piece_pool(i: usize) -> &'static rayon::ThreadPool {
    static POOLS: std::sync::OnceLock<[rayon::ThreadPool; 2]> = std::sync::OnceLock::new();
    let pool = || {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread rayon pool")
    };
    &POOLS.get_or_init(|| [pool(), pool()])[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both pieces run, each on a thread of its own pool (so two distinct threads, neither
    /// the caller's), and GEMM-sized rayon work inside a piece sees one thread.
    #[test]
    fn pieces_run_on_two_one_thread_pools() {
        let caller = std::thread::current().id();
        let piece = || (std::thread::current().id(), rayon::current_num_threads());
        let ((t0, n0), (t1, n1)) = on_two_cores(piece, piece);
        assert_ne!(t0, t1);
        assert!(t0 != caller && t1 != caller);
        assert_eq!((n0, n1), (1, 1));
    }

    /// A panic in the second piece reaches the caller with its message.
    #[test]
    fn a_panic_in_the_second_piece_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| on_two_cores(|| 1, || panic!("second failed")));
        let message = caught.expect_err("the panic is passed on");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"second failed"));
    }
}
