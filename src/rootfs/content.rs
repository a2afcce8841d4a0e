//! Where file bytes come from during extraction. The flattened tree only knows a content
//! reference per file; a source turns a batch of references into bytes on disk, reading its
//! backing store (layer streams, or later a chunked block image) in whatever order is cheapest.

use std::path::PathBuf;

use crate::flatten::ContentRef;

/// One file to fill: create `path` (it does not exist yet) with the bytes `content` names.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub content: ContentRef,
    pub path: PathBuf,
}

/// Fills files with their bytes. Implementations verify what they read and report any mismatch
/// as an error; they create each file with [`super::create_file`].
pub trait ContentSource: Sync {
    fn write_files(&self, requests: Vec<FileRequest>) -> super::Result<()>;
}
