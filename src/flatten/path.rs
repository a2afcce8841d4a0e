//! Lexical cleaning of tar entry paths, as umoci and containerd do: the result is relative to the
//! root, has no `.`, `..` or empty components, and `..` never climbs above the root. Names are
//! bytes: tar paths need not be UTF-8.

use super::error::EntryProblem;

/// Linux PATH_MAX: a path that cannot be created on a real filesystem is rejected up front.
pub const MAX_PATH: usize = 4096;
/// Linux NAME_MAX.
pub const MAX_NAME: usize = 255;

/// Splits and cleans `raw` into components. An empty result is the root itself.
pub fn clean(raw: &[u8]) -> Result<Vec<Box<[u8]>>, EntryProblem> {
    let mut parts: Vec<Box<[u8]>> = Vec::new();
    let mut total = 0usize;
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if let Some(p) = parts.pop() {
                    total -= p.len() + 1;
                }
            }
            name => {
                if name.len() > MAX_NAME {
                    return Err(EntryProblem::NameTooLong { max: MAX_NAME });
                }
                total += name.len() + 1;
                if total > MAX_PATH {
                    return Err(EntryProblem::PathTooLong { max: MAX_PATH });
                }
                parts.push(name.into());
            }
        }
    }
    Ok(parts)
}

/// Joins components back into a `/`-separated relative path.
pub fn join(parts: &[Box<[u8]>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    out
}

/// For messages: a lossy rendering of a byte path.
pub fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        display(&join(&clean(s.as_bytes()).unwrap()))
    }

    #[test]
    fn cleans_like_umoci() {
        assert_eq!(c("./usr/bin/"), "usr/bin");
        assert_eq!(c("/etc/passwd"), "etc/passwd");
        assert_eq!(c("../../../etc/shadow"), "etc/shadow");
        assert_eq!(c("a/b/../../../c"), "c");
        assert_eq!(c("a//b/./c"), "a/b/c");
        assert_eq!(c("./"), "");
    }

    #[test]
    fn rejects_overlong_paths() {
        let deep = "d/".repeat(3000);
        assert_eq!(clean(deep.as_bytes()), Err(EntryProblem::PathTooLong { max: MAX_PATH }));
        let long = "x".repeat(256);
        assert_eq!(clean(long.as_bytes()), Err(EntryProblem::NameTooLong { max: MAX_NAME }));
    }

    #[test]
    fn keeps_non_utf8_bytes() {
        let parts = clean(b"caf\xe9/\xff").unwrap();
        assert_eq!(&*parts[0], b"caf\xe9");
        assert_eq!(&*parts[1], b"\xff");
    }
}
