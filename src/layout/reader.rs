//! The block image at any offset, read from the layers flattening spooled.
//!
//! `convert` uses this instead of streaming segments when it can: each crypto worker fills its own
//! chunk buffer straight from the spool files (one copy, done by the kernel), so the work spreads
//! over the cores however the layers' sizes fall, and no thread stands between the spool and the
//! workers. The bytes are exactly those of [`stream_image`](super::stream_image).

use super::{BLOCK_SIZE, BlockLayout, Error};
use crate::flatten::{Flattened, NodeKind};
use crate::image::{Image, LayerError, SpooledLayer};

/// Random access to one image's block image.
pub struct BlockReader<'a> {
    image: &'a Image,
    spooled: &'a [SpooledLayer],
    /// Every live file with bytes, in image order (extents never overlap).
    files: Vec<Piece>,
    /// Where the metadata starts; everything before it not covered by `files` is zero.
    meta_offset: u64,
    meta: &'a [u8],
    superblock: [u8; BLOCK_SIZE as usize],
    size: u64,
}

/// A file's bytes: `len` bytes at image offset `at`, found at `from` in layer `layer`'s stream.
struct Piece {
    at: u64,
    len: u64,
    layer: usize,
    from: u64,
}

impl<'a> BlockReader<'a> {
    /// `None` if flattening kept no spooled copy of the layers (then stream the segments).
    pub fn new(image: &'a Image, flat: &'a Flattened, layout: &'a BlockLayout) -> Option<Self> {
        let spooled = flat.spooled.as_deref()?;
        let mut files: Vec<Piece> = flat
            .tree
            .inodes()
            .into_iter()
            .filter_map(|(_, id)| match flat.tree.node(id).kind {
                NodeKind::File(c) if c.size > 0 => {
                    Some(Piece { at: c.block * BLOCK_SIZE, len: c.size, layer: c.layer, from: c.offset })
                }
                _ => None,
            })
            .collect();
        files.sort_by_key(|p| p.at);
        let sb = &layout.superblock;
        Some(BlockReader {
            image,
            spooled,
            files,
            meta_offset: sb.meta_offset,
            meta: &layout.meta,
            superblock: sb.encode(),
            size: layout.image_size(),
        })
    }

    /// Total bytes of the block image.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `buf` with the image's bytes from `offset`; the range must lie inside the image.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Error> {
        let end = offset + buf.len() as u64;
        if end > self.size {
            return Err(Error::Format(format!(
                "read of {} bytes at {offset} past the end of a {}-byte image",
                buf.len(),
                self.size
            )));
        }
        let mut pos = offset;
        let mut next = self.files.partition_point(|p| p.at + p.len <= offset);
        let data_end = end.min(self.meta_offset);
        while pos < data_end {
            let out = &mut buf[(pos - offset) as usize..];
            match self.files.get(next).filter(|p| p.at < data_end) {
                Some(p) if p.at <= pos => {
                    let n = (p.at + p.len).min(data_end) - pos;
                    self.read_file(p, pos - p.at, &mut out[..n as usize])?;
                    pos += n;
                    next += 1;
                }
                gap => {
                    let to = gap.map_or(data_end, |p| p.at);
                    out[..(to - pos) as usize].fill(0);
                    pos = to;
                }
            }
        }
        // The tail: metadata, zero padding to a block, the superblock in the last block.
        let sb_offset = self.size - BLOCK_SIZE;
        while pos < end {
            let out = &mut buf[(pos - offset) as usize..(end - offset) as usize];
            let meta_end = self.meta_offset + self.meta.len() as u64;
            let n = if pos < meta_end {
                let from = &self.meta[(pos - self.meta_offset) as usize..];
                let n = from.len().min(out.len());
                out[..n].copy_from_slice(&from[..n]);
                n
            } else if pos < sb_offset {
                let n = ((sb_offset - pos) as usize).min(out.len());
                out[..n].fill(0);
                n
            } else {
                let from = &self.superblock[(pos - sb_offset) as usize..];
                let n = from.len().min(out.len());
                out[..n].copy_from_slice(&from[..n]);
                n
            };
            pos += n as u64;
        }
        Ok(())
    }

    fn read_file(&self, p: &Piece, skip: u64, out: &mut [u8]) -> Result<(), Error> {
        let spool = self
            .spooled
            .get(p.layer)
            .ok_or_else(|| Error::Format(format!("layer {} has no spooled copy", p.layer)))?;
        spool
            .read_exact_at(out, p.from + skip)
            .map_err(|e| Error::Image(self.image.layer_error(p.layer, LayerError::Spool(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten;

    /// Two committed images (one with a whiteout), read at awkward offsets and lengths, give the
    /// bytes of the streamed image.
    #[test]
    fn same_bytes_as_the_stream() {
        let spool = tempfile::tempdir().unwrap();
        for tag in ["shell-tool", "sqlite-report"] {
            let image = Image::committed(tag);
            let flat = flatten::flatten_spooled(&image, spool.path()).unwrap();
            let layout = BlockLayout::new(&flat);
            let mut want = Vec::new();
            super::super::stream_image(&image, &flat, &layout, &mut |b: &[u8]| {
                want.extend_from_slice(b);
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
            let reader = BlockReader::new(&image, &flat, &layout).unwrap();
            assert_eq!(reader.size(), want.len() as u64);
            let size = want.len();
            let mut cuts = vec![0, 1, 4095, 4096, 65536 + 7, size / 3, size / 2 + 13, size - 4097, size - 1];
            cuts.extend((0..size).step_by(512 << 10));
            for &at in &cuts {
                for len in [1, 100, 4096, 5000, 512 << 10, size] {
                    let len = len.min(size - at);
                    let mut got = vec![0xa5; len];
                    reader.read_exact_at(&mut got, at as u64).unwrap();
                    assert!(got == want[at..at + len], "{tag}: {len} bytes at {at}");
                }
            }
            let mut past = [0u8; 2];
            assert!(reader.read_exact_at(&mut past, size as u64 - 1).is_err());
        }
    }

    /// A spooled layer that lost its bytes is an error naming the image and the layer, never
    /// zeros or stale bytes in the chunk.
    #[test]
    fn a_shrunk_spool_is_an_error_naming_the_layer() {
        let spool = tempfile::tempdir().unwrap();
        let image = Image::committed("shell-tool");
        let flat = flatten::flatten_spooled(&image, spool.path()).unwrap();
        let layout = BlockLayout::new(&flat);
        let reader = BlockReader::new(&image, &flat, &layout).unwrap();
        let first = &reader.files[0];
        flat.spooled.as_ref().unwrap()[first.layer].truncate_file(first.from).unwrap();
        let mut buf = vec![0u8; 4096];
        let err = reader.read_exact_at(&mut buf, first.at).unwrap_err().to_string();
        assert!(err.contains(&format!("layer {}", first.layer)), "{err}");
        assert!(err.contains("temporary file"), "{err}");
    }
}
