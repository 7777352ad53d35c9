//! Running a loop compiled for an instruction set: [`on_isa!`](crate::dispatch::on_isa) wraps
//! a `#[inline(always)]` loop function in one `#[target_feature]` function per instruction set,
//! so its plain Rust loops vectorise for AVX-512 or AVX2 + FMA, and calls the one the caller's
//! [`Isa`](crate::Isa) names. (A closure passed to a generic wrapper is not reliably inlined
//! into it: the log-softmax lost its vectorisation that way.)

/// `on_isa!(isa, f(a: A, b: B) -> R)`: `f(a, b)` compiled for `isa` (see the
/// [module docs](self)); `Isa::Portable` runs it as built. The arguments are the caller's
/// variables of those names.
///
/// # Panics
/// If the CPU does not support `isa`.
macro_rules! on_isa {
    ($isa:expr, $f:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?) => {{
        let isa: $crate::Isa = $isa;
        assert!(isa.supported(), "this CPU does not support {isa:?}");
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512($($arg: $ty),*) $(-> $ret)? {
            $f($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn avx2($($arg: $ty),*) $(-> $ret)? {
            $f($($arg),*)
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supported` found AVX-512F on this CPU (asserted above).
            $crate::Isa::Avx512 => unsafe { avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supported` found AVX2 and FMA on this CPU (asserted above).
            $crate::Isa::Avx2 => unsafe { avx2($($arg),*) },
            _ => $f($($arg),*),
        }
    }};
}
pub(crate) use on_isa;
