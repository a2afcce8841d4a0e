//! Errors of the flatten stage. Every error names the image, the layer and the entry.

use crate::image;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error("{image}: layer {layer}: entry {entry:?}: {reason}")]
    Entry { image: String, layer: usize, entry: String, reason: EntryProblem },
}

/// Why one tar entry could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("path is longer than {max} bytes")]
    PathTooLong { max: usize },
    #[error("a path component is longer than {max} bytes")]
    NameTooLong { max: usize },
    #[error("parent {parent:?} is not a directory")]
    ParentNotDir { parent: String },
    #[error("too many levels of symbolic links while resolving the parent directory")]
    SymlinkLoop,
    #[error("hard link target {target:?} does not exist")]
    LinkTargetMissing { target: String },
    #[error("hard link target {target:?} is a directory")]
    LinkTargetIsDir { target: String },
    #[error("only a directory may stand at the root, found a {kind}")]
    RootNotDir { kind: &'static str },
    #[error("invalid whiteout name {name:?}")]
    BadWhiteout { name: String },
    #[error("unsupported tar entry type {0:?}")]
    UnsupportedType(char),
    #[error("GNU sparse files are not supported")]
    Sparse,
    #[error("bad header field: {0}")]
    BadHeader(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
