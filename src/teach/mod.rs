//! Teaching: what a newcomer meets first. `explain` tells one cold start step by step from the
//! real pipeline's numbers; `demo` runs the whole pipeline over the committed images in images/.

pub mod demo;
pub mod explain;
pub mod fleet_page;
