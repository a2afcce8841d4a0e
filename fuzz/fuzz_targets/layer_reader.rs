//! Feeds arbitrary bytes to the layer reader as an uncompressed tar stream, then applies what it
//! read as two layers (the bytes twice over: whiteouts and links then meet existing entries).
//! Any panic, hang or unbounded allocation is a bug; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = chunkload::flatten::scan::scan_entries(std::io::Cursor::new(data)) {
        let _ = chunkload::flatten::apply_layers(&[entries.clone(), entries]);
    }
});
