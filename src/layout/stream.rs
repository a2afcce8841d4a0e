//! Produces the block image's bytes, segment by segment: one segment per layer (its region of the
//! data region: live files copied to their extents, holes and padding as zeros), then the tail
//! (metadata and superblock). Each layer is streamed once; segments are independent, so they can
//! be produced in parallel and cut into chunks by their absolute offsets. Memory stays at one copy
//! buffer per segment however large the image is.

use std::io::Read;
use std::ops::Range;

use super::{BLOCK_SIZE, BlockLayout, Error};
use crate::flatten::{ContentRef, Flattened, NodeKind};
use crate::image::{Image, LayerError, LayerStream, SpoolReader};

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

/// Writes one segment's bytes, in order, to `out`. The layer is read back from the copy flattening
/// spooled, if it kept one, else decoded again from `image`.
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
        let mut bytes = LayerBytes::open(image, flat, layer)?;
        let mut buf = vec![0u8; BUFFER];
        let mut at = 0u64;
        for c in files {
            zeros(&mut emit, c.block * BLOCK_SIZE - pos)?;
            let skipped = bytes.skip(c.offset - at).map_err(CopyError::Read);
            match skipped.and_then(|()| copy(&mut bytes, c.size, &mut buf, &mut emit)) {
                Ok(()) => {}
                Err(CopyError::Read(e)) => return Err(bytes.fail(image, layer, e)),
                Err(CopyError::Sink(e)) => return Err(e),
            }
            let padded = c.size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
            zeros(&mut emit, padded - c.size)?;
            at = c.offset + c.size;
            pos = c.block * BLOCK_SIZE + padded;
        }
        bytes.finish(image, layer)?;
    }
    zeros(&mut emit, seg.range.end - pos)
}

/// Where a layer's decoded stream comes from on the second pass: the copy the first pass spooled,
/// or the blob decoded again (its blob digest checked again, so a blob changed since is an error).
enum LayerBytes<'a> {
    Spooled(SpoolReader<'a>),
    Decoded(Box<LayerStream>),
}

impl<'a> LayerBytes<'a> {
    fn open(image: &Image, flat: &'a Flattened, layer: usize) -> Result<Self, Error> {
        if let Some(spooled) = flat.spooled.as_ref().and_then(|s| s.get(layer)) {
            return Ok(LayerBytes::Spooled(spooled.reader()));
        }
        Ok(LayerBytes::Decoded(Box::new(image.reopen_layer(layer, &image.size_budget())?)))
    }

    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        match self {
            LayerBytes::Spooled(r) => r.skip(n),
            LayerBytes::Decoded(s) => s.skip(n),
        }
    }

    fn fail(self, image: &Image, layer: usize, e: std::io::Error) -> Error {
        match self {
            LayerBytes::Spooled(_) => Error::Image(image.layer_error(layer, LayerError::Spool(e))),
            LayerBytes::Decoded(s) => Error::Image(image.layer_error(layer, s.fail(e))),
        }
    }

    fn finish(self, image: &Image, layer: usize) -> Result<(), Error> {
        match self {
            LayerBytes::Spooled(_) => Ok(()),
            LayerBytes::Decoded(s) => {
                s.finish().map(drop).map_err(|e| Error::Image(image.layer_error(layer, e)))
            }
        }
    }
}

impl Read for LayerBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            LayerBytes::Spooled(r) => r.read(buf),
            LayerBytes::Decoded(s) => s.read(buf),
        }
    }
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
