//! File bytes straight from the layers: each layer that still has live files is streamed once
//! more (layers in parallel), skipping to each file's offset and copying its bytes out. The stream
//! is verified again to the end, so a blob that changed since the first pass is an error.

use std::io::{self, Read, Write};

use rayon::prelude::*;

use crate::image::{Image, LayerError};
use crate::rootfs::{self, ContentSource, FileRequest};

/// Reads file contents from an image's layer streams.
pub struct LayerContent<'a> {
    pub image: &'a Image,
}

const COPY_BUFFER: usize = 256 << 10;

impl ContentSource for LayerContent<'_> {
    fn write_files(&self, requests: Vec<FileRequest>) -> rootfs::Result<()> {
        let mut by_layer: Vec<Vec<FileRequest>> = vec![Vec::new(); self.image.layers.len()];
        for r in requests {
            by_layer[r.content.layer].push(r);
        }
        let budget = self.image.size_budget();
        by_layer.into_par_iter().enumerate().filter(|(_, reqs)| !reqs.is_empty()).try_for_each(
            |(layer, mut reqs)| {
                reqs.sort_by_key(|r| r.content.offset);
                let mut stream =
                    self.image.open_layer(layer, &budget).map_err(|e| rootfs::Error::Content(Box::new(e)))?;
                let mut buf = vec![0u8; COPY_BUFFER];
                let mut pos = 0u64;
                for r in &reqs {
                    let read_err = |e: io::Error, stream: crate::image::LayerStream| {
                        rootfs::Error::Content(Box::new(self.image.layer_error(layer, stream.fail(e))))
                    };
                    if let Err(e) = skip(&mut stream, r.content.offset - pos, &mut buf) {
                        return Err(read_err(e, stream));
                    }
                    let mut file = rootfs::create_file(&r.path)?;
                    let mut left = r.content.size;
                    while left > 0 {
                        let want = left.min(buf.len() as u64) as usize;
                        let n = match stream.read(&mut buf[..want]) {
                            Ok(0) => {
                                let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                                return Err(rootfs::Error::Content(Box::new(
                                    self.image.layer_error(layer, LayerError::Tar(e)),
                                )));
                            }
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(read_err(e, stream)),
                        };
                        file.write_all(&buf[..n]).map_err(|source| rootfs::Error::Io {
                            path: r.path.clone(),
                            op: "write",
                            source,
                        })?;
                        left -= n as u64;
                    }
                    pos = r.content.offset + r.content.size;
                }
                stream.finish().map_err(|e| {
                    let e = match e {
                        LayerError::BlobDigest { .. } | LayerError::DiffId { .. } => LayerError::Changed,
                        other => other,
                    };
                    rootfs::Error::Content(Box::new(self.image.layer_error(layer, e)))
                })?;
                Ok(())
            },
        )
    }
}

fn skip(r: &mut impl Read, mut n: u64, buf: &mut [u8]) -> io::Result<()> {
    while n > 0 {
        let want = n.min(buf.len() as u64) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => n -= k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
