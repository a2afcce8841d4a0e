//! Output paths, made safe the same way for every command: checked before any work starts (an
//! existing file is refused unless `--force`; an output that is one of the command's inputs, or
//! lies inside an input directory such as the chunk store, is refused even with it), then written
//! beside the destination and renamed into place with the mode the kind of file needs, so a
//! failure (a full disk, Ctrl-C) leaves the destination as it was.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What the command reads: a name for messages (`--key`) and the path.
pub type Input<'a> = (&'a str, &'a Path);

/// The name of a chunk store input, whose directory no output may be put inside.
pub const STORE: &str = "chunk store";

/// Mode of public outputs (manifests, traces, CSV, reports).
pub const PUBLIC: u32 = 0o644;
/// Mode of secrets (customer keys).
pub const SECRET: u32 = 0o600;

/// The filesystem path of an image reference (`DIR[:TAG]`, `FILE[:TAG]`, `FILE[:REPO:TAG]`): the
/// longest prefix before a `:` that exists, else the whole reference.
pub fn image_path(reference: &str) -> PathBuf {
    let mut candidate = reference;
    loop {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
        match candidate.rfind(':') {
            Some(at) => candidate = &candidate[..at],
            None => return PathBuf::from(reference),
        }
    }
}

/// The same file (device and inode) when both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// `out` with its parent directory resolved (the file itself need not exist).
fn resolved(out: &Path) -> Option<PathBuf> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(parent).ok()?.join(out.file_name()?))
}

/// Checks an output file before any work: a directory is refused; an input is refused even with
/// `force`; an existing file is refused unless `force`. A missing parent directory is created
/// when the file is written (as `convert --store out/store -o out/m` expects).
pub fn check_file(flag: &str, out: &Path, inputs: &[Input<'_>], force: bool) -> Result<()> {
    let shown = out.display();
    if out.as_os_str().is_empty() {
        bail!("{flag}: the output path is empty");
    }
    check_not_input(flag, out, inputs)?;
    // A parent that exists as a file can never hold the output.
    if let Some(file) = out.ancestors().skip(1).find(|a| a.is_file()) {
        bail!("{flag} {shown}: {} is a file, not a directory", file.display());
    }
    match fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => bail!("{flag} {shown}: is a directory; give a file name"),
        Ok(_) if !force => {
            bail!("{flag} {shown}: already exists; refusing to overwrite it (pass --force to replace it)")
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("{flag} {shown}: cannot check it")),
    }
    Ok(())
}

/// Checks an output directory before any work: it must not be or sit inside an input; with
/// `replaced` (the command replaces the whole directory), it must not hold one either. (Whether
/// an existing directory may be reused is the command's rule.)
pub fn check_dir(flag: &str, out: &Path, inputs: &[Input<'_>], replaced: bool) -> Result<()> {
    if out.as_os_str().is_empty() {
        bail!("{flag}: the output path is empty");
    }
    if out.exists() && !out.is_dir() {
        bail!("{flag} {}: exists and is not a directory", out.display());
    }
    check_not_input(flag, out, inputs)?;
    // An input inside a replaced output directory would go with it.
    if let Ok(dir) =
        fs::canonicalize(out).map_err(|_| ()).and_then(|d| if replaced { Ok(d) } else { Err(()) })
    {
        for (what, input) in inputs {
            if let Ok(i) = fs::canonicalize(input)
                && i.starts_with(&dir)
            {
                bail!(
                    "{flag} {}: holds the {what} {}, which this command reads; choose another directory",
                    out.display(),
                    input.display()
                );
            }
        }
    }
    Ok(())
}

fn check_not_input(flag: &str, out: &Path, inputs: &[Input<'_>]) -> Result<()> {
    let target = resolved(out);
    // Any chunk store, input or not: a file dropped among its chunks and manifests is refused.
    if let Some(t) = &target
        && let Some(store) = t
            .ancestors()
            .skip(1)
            .find(|a| chunkload::sniff::sniff(a).is_ok_and(|k| k == chunkload::sniff::Kind::ChunkStore))
    {
        bail!(
            "{flag} {}: lies inside the chunk store {}; write it elsewhere",
            out.display(),
            store.display()
        );
    }
    for (what, input) in inputs {
        let input_real = fs::canonicalize(input).ok();
        if same_file(out, input) || (target.is_some() && target == input_real) {
            bail!(
                "{flag} {}: is the {what} this command reads; refusing to write over an input, \
                 even with --force",
                out.display()
            );
        }
        // Only a chunk store's directory is guarded as a whole (a file dropped among its chunks
        // and manifests); an output may well sit in, say, the images folder.
        if let (Some(t), Some(i)) = (&target, &input_real)
            && *what == STORE
            && i.is_dir()
            && t.starts_with(i)
        {
            bail!("{flag} {}: lies inside the {what} {}; write it elsewhere", out.display(), input.display());
        }
    }
    Ok(())
}

/// A file being written beside its destination: [`Staged::commit`] renames it into place with
/// its mode; dropped uncommitted (an error on the way), it is removed and the destination is
/// untouched.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl Staged {
    /// A staging path beside `dest` that keeps its extension (so `.zst` still compresses).
    /// `dest`'s directory is created if missing.
    pub fn beside(dest: &Path) -> Self {
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            // An error shows when the staging file cannot be created, naming the destination.
            let _ = fs::create_dir_all(parent);
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = dest.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.partial-{}{ext}", std::process::id()));
        Staged { tmp, dest: dest.to_path_buf(), done: false }
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Sets `mode`, makes the file durable and renames it over the destination.
    pub fn commit(mut self, mode: u32) -> Result<()> {
        let show = self.dest.display().to_string();
        let f = fs::File::open(&self.tmp).with_context(|| format!("cannot write {show}"))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot write {show}"))?;
        f.sync_all().with_context(|| format!("cannot write {show}"))?;
        fs::rename(&self.tmp, &self.dest).with_context(|| format!("cannot write {show}"))?;
        self.done = true;
        Ok(())
    }
}

impl Staged {
    /// Like [`commit`](Self::commit) but never replaces an existing destination, even one that
    /// appeared since the check (a hard link fails where a rename would overwrite).
    pub fn commit_new(mut self, mode: u32) -> Result<()> {
        let show = self.dest.display().to_string();
        let f = fs::File::open(&self.tmp).with_context(|| format!("cannot write {show}"))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot write {show}"))?;
        f.sync_all().with_context(|| format!("cannot write {show}"))?;
        fs::hard_link(&self.tmp, &self.dest).with_context(|| format!("cannot write {show}"))?;
        let _ = fs::remove_file(&self.tmp);
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` beside and renamed into place, with `mode`.
pub fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let staged = Staged::beside(dest);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(staged.path())
        .with_context(|| format!("cannot write {}", dest.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    drop(f);
    staged.commit(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_against_inputs_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        fs::write(&key, "x").unwrap();
        let store = dir.path().join("store");
        fs::create_dir(&store).unwrap();
        let inputs: [Input; 2] = [("key", &key), ("chunk store", &store)];
        let e = check_file("-o", &key, &inputs, true).unwrap_err().to_string();
        assert!(e.contains("is the key") && e.contains("even with --force"), "{e}");
        let e = check_file("-o", &store.join("m"), &inputs, true).unwrap_err().to_string();
        assert!(e.contains("inside the chunk store"), "{e}");
        let other = dir.path().join("other");
        fs::write(&other, "y").unwrap();
        let e = check_file("-o", &other, &inputs, false).unwrap_err().to_string();
        assert!(e.contains("already exists") && e.contains("--force"), "{e}");
        check_file("-o", &other, &inputs, true).unwrap();
        check_file("-o", &dir.path().join("new"), &inputs, false).unwrap();
        check_file("-o", &dir.path().join("no/such/x"), &inputs, false).unwrap();
        let e = check_file("-o", &other.join("x"), &inputs, false).unwrap_err().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        let e = check_file("-o", dir.path(), &[], true).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = check_dir("--out", dir.path(), &inputs, true).unwrap_err().to_string();
        assert!(e.contains("holds the key"), "{e}");
        check_dir("--out", dir.path(), &inputs, false).unwrap();
        let e = check_dir("--out", &store.join("x"), &inputs, false).unwrap_err().to_string();
        assert!(e.contains("inside the chunk store"), "{e}");
        let e = check_dir("--out", &key, &inputs, false).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn staged_writes_leave_the_destination_alone_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.zst");
        fs::write(&dest, "old").unwrap();
        {
            let s = Staged::beside(&dest);
            assert!(s.path().to_string_lossy().ends_with(".zst"));
            fs::write(s.path(), "new").unwrap();
        }
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the staging file is removed");
        write_file(&dest, b"new", SECRET).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
