//! File bytes straight from the layers: each layer that still has live files is streamed once
//! more (layers in parallel), skipping to each file's offset and handing its bytes to the sink.
//! The stream is verified again to the end, so a blob that changed since the first pass is an
//! error.

use std::io::Read;

use rayon::prelude::*;

use super::{ContentSource, FileRequest, FileSink, INLINE_LIMIT};
use crate::image::{Image, LayerError};
use crate::rootfs;

/// Reads file contents from an image's layer streams.
pub struct LayerContent<'a> {
    pub image: &'a Image,
}

const COPY_BUFFER: usize = 256 << 10;

impl ContentSource for LayerContent<'_> {
    fn write_files(&self, requests: Vec<FileRequest>, sink: &FileSink) -> rootfs::Result<()> {
        let mut by_layer: Vec<Vec<FileRequest>> = vec![Vec::new(); self.image.layers.len()];
        for r in requests {
            by_layer[r.content.layer].push(r);
        }
        by_layer
            .into_par_iter()
            .enumerate()
            .filter(|(_, reqs)| !reqs.is_empty())
            .try_for_each(|(layer, reqs)| self.copy_layer(layer, reqs, sink))
    }
}

impl LayerContent<'_> {
    fn copy_layer(&self, layer: usize, mut reqs: Vec<FileRequest>, sink: &FileSink) -> rootfs::Result<()> {
        let content_err = |e: LayerError| rootfs::Error::Content(Box::new(self.image.layer_error(layer, e)));
        reqs.sort_by_key(|r| r.content.offset);
        let budget = self.image.size_budget();
        let mut stream =
            self.image.reopen_layer(layer, &budget).map_err(|e| rootfs::Error::Content(Box::new(e)))?;
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut pos = 0u64;
        for r in reqs {
            if sink.has_failed() {
                break;
            }
            let (offset, size) = (r.content.offset, r.content.size);
            if let Err(e) = stream.skip(offset - pos) {
                return Err(content_err(stream.fail(e)));
            }
            pos = offset + size;
            if size as usize <= INLINE_LIMIT {
                let mut data = vec![0u8; size as usize];
                if let Err(e) = stream.read_exact(&mut data) {
                    return Err(content_err(stream.fail(e)));
                }
                sink.submit(r, data)?;
                continue;
            }
            let mut file = sink.create(&r)?;
            let mut left = size;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                if let Err(e) = stream.read_exact(&mut buf[..want]) {
                    return Err(content_err(stream.fail(e)));
                }
                file.write_all(&buf[..want])?;
                left -= want as u64;
            }
            file.finish()?;
        }
        stream.finish().map(|_| ()).map_err(|e| {
            content_err(match e {
                LayerError::BlobDigest { .. } | LayerError::DiffId { .. } => LayerError::Changed,
                other => other,
            })
        })
    }
}
