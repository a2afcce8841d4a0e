//! Produces the block image's bytes in order, streaming each layer once: live files are copied to
//! their extents, everything else (holes left by hidden files, block padding) is zeros, then the
//! metadata and the superblock. Memory stays at one copy buffer however large the image is.

use std::io::Read;

use super::{BLOCK_SIZE, BlockLayout, Error};
use crate::flatten::{ContentRef, Flattened, NodeKind};
use crate::image::Image;

const BUFFER: usize = 512 << 10;
static ZEROS: [u8; BUFFER] = [0u8; BUFFER];

/// Writes the whole block image, in order, to `out`. The layers are re-read from `image` (their
/// blob digests are checked again, so a blob that changed since flattening is an error).
pub fn stream_image<E>(
    image: &Image,
    flat: &Flattened,
    layout: &BlockLayout,
    out: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut emit = |bytes: &[u8]| out(bytes).map_err(|e| Error::Sink(Box::new(e)));
    let mut by_layer: Vec<Vec<ContentRef>> = vec![Vec::new(); image.layers.len()];
    for (_, id) in flat.tree.inodes() {
        if let NodeKind::File(c) = flat.tree.node(id).kind
            && c.size > 0
        {
            by_layer[c.layer].push(c);
        }
    }
    let mut pos = 0u64;
    let mut buf = vec![0u8; BUFFER];
    let budget = image.size_budget();
    for (layer, mut files) in by_layer.into_iter().enumerate() {
        if files.is_empty() {
            continue;
        }
        files.sort_by_key(|c| c.block);
        let mut stream = image.reopen_layer(layer, &budget)?;
        let mut at = 0u64;
        for c in files {
            zeros(&mut emit, c.block * BLOCK_SIZE - pos)?;
            let skipped = copy(&mut stream, c.offset - at, &mut buf, &mut |_| Ok(()));
            let copied = skipped.and_then(|()| copy(&mut stream, c.size, &mut buf, &mut emit));
            match copied {
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
    let sb = &layout.superblock;
    zeros(&mut emit, sb.meta_offset - pos)?;
    emit(&layout.meta)?;
    let meta_padded = sb.meta_len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    zeros(&mut emit, meta_padded - sb.meta_len)?;
    emit(&sb.encode())?;
    Ok(())
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

/// Copies `n` bytes from `r` to `emit` (or discards them, to skip).
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
