//! Chunk store (in progress).
