//! Reports: the structured results commands print as text tables or JSON. Building a report is
//! separate from printing it, so tests and other commands reuse the same numbers.

pub mod dedup;
pub mod html;
pub mod inspect;
pub mod manifest;
pub mod plot;
mod table;

pub use table::Table;
