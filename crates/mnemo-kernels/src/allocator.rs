//! Options of mimalloc, the `mnemo` binary's global allocator (behind this crate's
//! `allocator-options` feature; harmless in a process whose allocator is another).
//!
//! mimalloc gives freed memory back to the OS after `purge_delay` milliseconds (default 1000)
//! and faults it in again on the next allocation. The exact Feedback step allocates and frees
//! many buffers per step: kept (`-1`), `fb_train_chunk1` ran 5–12 % faster with peak memory
//! 5–8 % higher (docs/performance.md).
use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc v3's `mi_option_purge_delay` (its place in `mi_option_e`, `mimalloc.h`); the
/// bindings of libmimalloc-sys 0.1 name no constant for it. The test below checks that this
/// option reads mimalloc's documented default for it, 1000 ms.
const PURGE_DELAY: mi_option_t = 15;

/// Keep freed memory for reuse instead of returning it to the OS, unless the user chose a
/// purge delay (`MIMALLOC_PURGE_DELAY` in the environment).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores a value in mimalloc's option table (an atomic
        // store of a valid option index), which any thread may do at any time.
        unsafe { mi_option_set(PURGE_DELAY, -1) }
    }
}

/// mimalloc's purge delay in milliseconds (`-1`: never purge).
pub fn purge_delay_ms() -> i64 {
    // SAFETY: `mi_option_get` reads mimalloc's option table for a valid option index.
    unsafe { mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_found_and_kept_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the user's value stands; nothing to check
        }
        assert_eq!(
            purge_delay_ms(),
            1000,
            "mimalloc's default purge delay at this index"
        );
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
