//! The memory allocator of every binary built on this crate: the server, the
//! tests and the benches alike, so what is measured is what runs.
//!
//! glibc's malloc took about a tenth of the CPU under load, mostly in the many
//! small, short-lived buffers of a message's turn freed on another thread than
//! the one that made them; mimalloc's per-thread free lists make those cheap.
//! Two of mimalloc's defaults suit a short benchmark better than a service
//! that idles between bursts; [`configure`] changes them.

use std::sync::Once;

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// The global allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its index in `mi_option_e` of the `mimalloc.h`
/// the bindings build (the same in mimalloc 2 and 3), which they leave
/// unnamed. `tests/allocator.rs` fails if it stops meaning the purge delay.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Sets the allocator up for a long-running service. The `balas` binary calls
/// it first thing, and [`crate::app::App::open`] again for the tests and
/// benches, which start the service in their own processes (later calls do
/// nothing); what was allocated before is left as it is.
///
/// - Freed memory goes back to the kernel at once. mimalloc 3 waits a second
///   by default, and only a thread that calls the allocator again looks at
///   the clock, so a thread that went quiet after a burst (a worker, the
///   store's writer, the one that trained the intent model at start) kept its
///   freed pages resident for good.
/// - Pages stay small (4 KiB). mimalloc commits its arenas up front where the
///   kernel overcommits, and with transparent huge pages a touch of one byte
///   makes a whole 2 MiB page resident, which a 4 KiB purge cannot give back.
///
/// Measured: `balas serve` idle on the embedded store, RSS 83 → 35 MiB;
/// `cargo bench --bench broadcast_load -- --store embedded`, peak RSS
/// 152 → 102 MiB at the same sending rate (BENCHMARKS.md, phase G).
pub fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(configure_once);
}

fn configure_once() {
    // SAFETY: mi_option_set writes one integer of mimalloc's option table
    // (mimalloc itself fills that table lazily from any thread); the purge
    // delay is read at each purge, so a later change takes effect then.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and reads
        // or writes no memory of this process.
        let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
        if refused {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "transparent huge pages stay allowed for this process"
            );
        }
    }
}
