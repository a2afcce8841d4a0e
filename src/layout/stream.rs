//! Produces the block image's bytes, segment by segment: one segment per layer (its region of the
//! data region: live files copied to their extents, holes and padding as zeros), then the tail
//! (metadata and superblock). Each layer is streamed once; segments are independent, so they can
//! be produced in parallel and cut into chunks by their absolute offsets. Memory stays at one copy
//! buffer per segment however large the image is.

use std::io::Read;
use std::ops::Range;

use super::{BLOCK_SIZE, BlockLayout, Error};
use crate::flatten::{ContentRef, Flattened, NodeKind};
use crate::image::Image;

const BUFFER: usize = 512 << 10;
static ZEROS: [u8; BUFFER] = [0u8; BUFFER];

/// A contiguous byte range of the block image and what fills it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub range: Range<u64>,
    /// The layer whose region this is; `None` for the metadata and superblock at the end.
    pub layer: Option<usize>,
}

/// The image's segments in offset order; together they cover it exactly.
pub fn segments(image: &Image, flat: &Flattened, layout: &BlockLayout) -> Vec<Segment> {
    let mut out: Vec<Segment> = flat
        .layers
        .iter()
        .take(image.layers.len())
        .filter(|l| l.blocks > 0)
        .map(|l| Segment {
            range: l.first_block * BLOCK_SIZE..(l.first_block + l.blocks) * BLOCK_SIZE,
            layer: Some(l.index),
        })
        .collect();
    out.push(Segment { range: layout.superblock.meta_offset..layout.image_size(), layer: None });
    out
}

/// Writes the whole block image, in order, to `out` (one segment after another).
pub fn stream_image<E>(
    image: &Image,
    flat: &Flattened,
    layout: &BlockLayout,
    out: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    for seg in segments(image, flat, layout) {
        stream_segment(image, flat, layout, &seg, out)?;
    }
    Ok(())
}

/// Writes one segment's bytes, in order, to `out`. The layer is re-read from `image` (its blob
/// digest is checked again, so a blob that changed since flattening is an error).
pub fn stream_segment<E>(
    image: &Image,
    flat: &Flattened,
    layout: &BlockLayout,
    seg: &Segment,
    out: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut emit = |bytes: &[u8]| out(bytes).map_err(|e| Error::Sink(Box::new(e)));
    let Some(layer) = seg.layer else {
        let sb = &layout.superblock;
        emit(&layout.meta)?;
        zeros(&mut emit, sb.meta_len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE - sb.meta_len)?;
        return emit(&sb.encode());
    };
    let mut files: Vec<ContentRef> = flat
        .tree
        .inodes()
        .into_iter()
        .filter_map(|(_, id)| match flat.tree.node(id).kind {
            NodeKind::File(c) if c.layer == layer && c.size > 0 => Some(c),
            _ => None,
        })
        .collect();
    files.sort_by_key(|c| c.block);
    let mut pos = seg.range.start;
    if !files.is_empty() {
        let budget = image.size_budget();
        let mut stream = image.reopen_layer(layer, &budget)?;
        let mut buf = vec![0u8; BUFFER];
        let mut at = 0u64;
        for c in files {
            zeros(&mut emit, c.block * BLOCK_SIZE - pos)?;
            let skipped = stream.skip(c.offset - at).map_err(CopyError::Read);
            match skipped.and_then(|()| copy(&mut stream, c.size, &mut buf, &mut emit)) {
                Ok(()) => {}
                Err(CopyError::Read(e)) => {
                    return Err(Error::Image(image.layer_error(layer, stream.fail(e))));
                }
                Err(CopyError::Sink(e)) => return Err(e),
            }
            let padded = c.size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
            zeros(&mut emit, padded - c.size)?;
            at = c.offset + c.size;
            pos = c.block * BLOCK_SIZE + padded;
        }
        stream.finish().map_err(|e| Error::Image(image.layer_error(layer, e)))?;
    }
    zeros(&mut emit, seg.range.end - pos)
}

fn zeros(emit: &mut impl FnMut(&[u8]) -> Result<(), Error>, mut n: u64) -> Result<(), Error> {
    while n > 0 {
        let k = n.min(BUFFER as u64) as usize;
        emit(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

enum CopyError {
    Read(std::io::Error),
    Sink(Error),
}

impl From<std::io::Error> for CopyError {
    fn from(e: std::io::Error) -> Self {
        CopyError::Read(e)
    }
}

/// Copies `n` bytes from `r` to `emit`.
fn copy(
    r: &mut impl Read,
    mut n: u64,
    buf: &mut [u8],
    emit: &mut impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), CopyError> {
    while n > 0 {
        let want = n.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..want])?;
        emit(&buf[..want]).map_err(CopyError::Sink)?;
        n -= want as u64;
    }
    Ok(())
}
