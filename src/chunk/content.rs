//! File bytes for extraction from a chunked block image: files are visited in block order, so
//! each chunk is fetched, verified and decrypted once and its bytes cut out for every file in it.

use crate::layout::BLOCK_SIZE;
use crate::rootfs::{self, ContentSource, FileRequest, FileSink, INLINE_LIMIT};

use super::ChunkedImage;

/// Reads file contents out of a [`ChunkedImage`].
pub struct ChunkContent<'a, 'b> {
    pub image: &'a ChunkedImage<'b>,
}

impl ContentSource for ChunkContent<'_, '_> {
    fn write_files(&self, mut requests: Vec<FileRequest>, sink: &FileSink) -> rootfs::Result<()> {
        requests.sort_by_key(|r| r.content.block);
        let cs = self.image.chunk_size();
        let mut cached: Option<(u32, Vec<u8>)> = None;
        for r in requests {
            if sink.has_failed() {
                break;
            }
            let start = r.content.block * BLOCK_SIZE;
            let end = start + r.content.size;
            let mut data = Vec::with_capacity((r.content.size as usize).min(INLINE_LIMIT));
            let mut file = None;
            let mut pos = start;
            while pos < end {
                let index = (pos / cs) as u32;
                if cached.as_ref().is_none_or(|(i, _)| *i != index) {
                    let chunk =
                        self.image.read_chunk(index).map_err(|e| rootfs::Error::Content(Box::new(e)))?;
                    cached = Some((index, chunk));
                }
                let chunk = &cached.as_ref().expect("just filled").1;
                let from = (pos - u64::from(index) * cs) as usize;
                let take = ((end - pos) as usize).min(chunk.len() - from);
                let bytes = &chunk[from..from + take];
                if r.content.size as usize <= INLINE_LIMIT {
                    data.extend_from_slice(bytes);
                } else {
                    if file.is_none() {
                        file = Some(sink.create(&r)?);
                    }
                    file.as_mut().expect("created").write_all(bytes)?;
                }
                pos += take as u64;
            }
            match file {
                Some(f) => f.finish()?,
                None => sink.submit(r, data)?,
            }
        }
        Ok(())
    }
}
