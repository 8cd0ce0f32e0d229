//! The allocator, once configured, gives freed memory back to the kernel at
//! once (`src/allocator.rs`). Its own test binary: the resident size it reads
//! is the whole process's, so no other test may run beside it.

/// The process's resident set size in bytes, from `/proc/self/status`.
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in kB");
    kib * 1024
}

const MIB: usize = 1024 * 1024;

#[test]
fn freed_memory_leaves_the_process_at_once() {
    balas::allocator::configure();
    let before = resident_bytes();
    // 64 MiB in blocks small enough to live in mimalloc's pages (huge blocks
    // are mapped and unmapped on their own, whatever the options), each
    // written so that it is resident.
    let blocks: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8 | 1; 64 * 1024]).collect();
    let grown = resident_bytes();
    assert!(
        grown >= before + 48 * MIB,
        "64 MiB written: {} → {} MiB",
        before / MIB,
        grown / MIB
    );
    drop(blocks);
    let after = resident_bytes();
    assert!(
        after <= before + 16 * MIB,
        "64 MiB freed but still resident: {} → {} → {} MiB",
        before / MIB,
        grown / MIB,
        after / MIB
    );
}
