//! Import of strace output into a trace.
//!
//! Input: `strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close,chroot -o FILE chroot ROOT CMD`
//! (`-ttt`, `-T` and the `[pid N]` prefix of output to a terminal are accepted too; `open`, `readv`,
//! `preadv`, `dup`, `dup2`, `dup3` and `fcntl(F_DUPFD*)` are understood when present). What it decides,
//! and why:
//!
//! - Paths. `-y` shows each descriptor's path as the tracer sees it, so under the chroot it starts with
//!   the host prefix ROOT; that prefix is stripped. A successful open is recorded under the path its
//!   descriptor resolves to (symlinks followed, as the kernel did), not the spelling the program used.
//!   A path that is not under ROOT (the host files `chroot` itself loads before `chroot()`, /proc, /dev,
//!   pipes, sockets) is dropped and counted.
//! - Failed opens (`= -1 ENOENT ...`) become `stat` records: the lookup walked the directories even
//!   though nothing was opened, and module searches (Python's sys.path) are mostly that. Their path is
//!   the one the program asked for: under ROOT it is stripped; absolute and not under ROOT, it is taken
//!   as inside the chroot when the directory descriptor (usually the cwd, `AT_FDCWD</...>`) is under
//!   ROOT, which is where `chroot` leaves it, or when the process is known to be inside the chroot
//!   (below); otherwise dropped. Relative paths are joined to the directory descriptor's path.
//!   Other failed calls are dropped and counted.
//! - Both views in one run. strace prints a descriptor's path (`-y`) as the tracer sees it (under
//!   ROOT) but the path a program asked for as the program sees it (inside the chroot): in one
//!   `openat(AT_FDCWD</ROOT/app>, "/etc/passwd", ...) = 3</ROOT/etc/passwd>` line both appear.
//!   A program that calls `chroot()` without `chdir("/")` (Python's `os.chroot`, say) keeps a
//!   working directory outside ROOT, so its cwd annotation says nothing about which view its
//!   absolute paths are in. When `chroot` is among the traced calls, a process that called
//!   `chroot(ROOT)` successfully (a relative argument is taken as ROOT), and every process first
//!   seen after that, is inside: its absolute paths are read in the chroot's view, wherever its
//!   cwd is. Descriptor annotations stay in the tracer's view whatever the process.
//! - Offsets. `read`/`readv` use and advance the position of their open file description; `pread64`/
//!   `preadv` use their explicit offset; `lseek` sets the position to the offset it returns (strace
//!   prints the resulting offset, so SEEK_END needs no file size); `dup*` share the description; `close`
//!   forgets the descriptor. Descriptions are keyed by descriptor number and annotated path, across
//!   processes (threads share descriptor tables and forked children share descriptions). A read on a
//!   descriptor whose open was not seen has no known offset and is dropped and counted. Reads that
//!   return 0 (end of file) read nothing and are dropped and counted.
//! - `mmap` of a file descriptor becomes an `mmap` record of (offset, length); anonymous mappings are
//!   not file accesses. Which pages count as read is the replay's [`super::MmapRule`].
//! - Times are microseconds since the first timestamped line; a call split into `<unfinished ...>` and
//!   `<... resumed>` lines takes the time it started. Records are sorted by time (stable), then
//!   processes are numbered 0, 1, ... in order of first appearance.
//! - Unknown syscalls, signals, exits and lines that do not start with a timestamp are skipped and
//!   counted; a line of a known syscall that does not parse is an error naming the line.
//!
//! `grammar.rs` parses a line (no state); `fds.rs` keeps the descriptor table and cleans paths;
//! this file decides what each call means and builds the records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::BufRead;

use serde::Serialize;

use super::error::{Error, Result};
use super::format::{Access, Header, Op, Record, TracePath};
use crate::report::Table;

mod fds;
mod grammar;

use fds::{FdTable, ReadAt, normalize, strip_root};
use grammar::{AT_FDCWD, Call, Fd, Ret, call_name, fd_arg, int_arg, parse_call, split_prefix, string_arg};

const KNOWN: &[&str] = &[
    "openat", "open", "read", "readv", "pread64", "preadv", "mmap", "lseek", "close", "dup", "dup2", "dup3",
    "fcntl", "chroot",
];

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The host directory the traced program was chrooted into (strace shows it in `-y` paths).
    pub root: Vec<u8>,
    /// Recorded in the trace header.
    pub command: String,
}

/// The imported trace and what was kept and dropped on the way.
#[derive(Debug)]
pub struct Import {
    pub header: Header,
    pub records: Vec<Record>,
    pub summary: ImportSummary,
}

/// Counts of what the importer saw, kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub lines: u64,
    /// Completed calls of the syscalls the importer understands.
    pub calls: u64,
    pub records: u64,
    pub threads: u32,
    pub by_op: BTreeMap<Op, u64>,
    pub dropped: Dropped,
    /// Calls of syscalls the importer does not understand, by name.
    pub unknown_syscalls: BTreeMap<String, u64>,
}

/// Why calls or lines produced no record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The path is not under the root prefix (host files, /proc, /dev, ...).
    pub outside_root: u64,
    /// The descriptor is not a file with a path: anonymous mmap, pipe, socket, no `-y` annotation.
    pub not_a_file: u64,
    /// A relative path whose directory descriptor has no annotation.
    pub unresolved: u64,
    /// Failed calls other than opens (which become `stat`), and calls whose result is `?`.
    pub failed: u64,
    /// Reads that returned 0 bytes.
    pub empty_reads: u64,
    /// Reads on a descriptor whose offset is unknown (its open was not in the trace).
    pub unknown_offset: u64,
    /// Signals, exits and lines without a timestamp.
    pub other_lines: u64,
}

struct Pending {
    name: String,
    text: String,
    t_us: u64,
}

struct Importer<'a> {
    file: &'a str,
    root: Vec<u8>,
    line: u64,
    pending: HashMap<u32, Pending>,
    fds: FdTable,
    raw: Vec<(u64, u32, TracePath, Access)>,
    summary: ImportSummary,
    first_t: Option<u64>,
    last_t: u64,
    day: u64,
    /// Processes seen so far, and those known to be inside the chroot (see the module docs).
    seen: HashSet<u32>,
    inside: HashSet<u32>,
    /// A process has called `chroot(ROOT)`: processes first seen from now on are inside.
    chrooted: bool,
}

/// Reads strace output and builds a trace. `file` names the input in error messages.
pub fn import<R: BufRead>(input: R, file: &str, opts: &ImportOptions) -> Result<Import> {
    let mut root = normalize(&opts.root);
    if root == b"/" {
        root.clear();
    }
    let mut imp = Importer {
        file,
        root,
        line: 0,
        pending: HashMap::new(),
        fds: FdTable::default(),
        raw: Vec::new(),
        summary: ImportSummary::default(),
        first_t: None,
        last_t: 0,
        day: 0,
        seen: HashSet::new(),
        inside: HashSet::new(),
        chrooted: false,
    };
    for line in input.split(b'\n') {
        let line = line.map_err(|source| Error::Io { file: file.to_string(), source })?;
        imp.line += 1;
        imp.summary.lines += 1;
        let line = String::from_utf8_lossy(&line);
        imp.line_in(line.trim_end_matches('\r'))?;
    }
    Ok(imp.finish(opts))
}

impl Importer<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Line { file: self.file.to_string(), line: self.line, reason: reason.into() }
    }

    fn line_in(&mut self, line: &str) -> Result<()> {
        let Some((pid, t_abs, rest)) = split_prefix(line) else {
            self.summary.dropped.other_lines += 1;
            return Ok(());
        };
        // -tt clocks wrap at midnight.
        let mut t_abs = t_abs + self.day;
        if t_abs + 12 * 3_600_000_000 < self.last_t {
            self.day += 24 * 3_600_000_000;
            t_abs += 24 * 3_600_000_000;
        }
        self.last_t = self.last_t.max(t_abs);
        let first = *self.first_t.get_or_insert(t_abs);
        let t_us = t_abs.saturating_sub(first);
        if self.seen.insert(pid) && self.chrooted {
            self.inside.insert(pid); // forked after the chroot, by a process under it
        }

        if rest.starts_with("+++") || rest.starts_with("---") {
            if rest.starts_with("+++") {
                self.pending.remove(&pid);
            }
            self.summary.dropped.other_lines += 1;
            return Ok(());
        }
        if let Some(r) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = r.split_once(" resumed>") else {
                return Err(self.err("malformed <... resumed> line"));
            };
            return match self.pending.remove(&pid) {
                Some(p) if p.name == name => {
                    let text = format!("{}{}", p.text, tail);
                    self.call(pid, p.t_us, &text)
                }
                Some(p) => Err(self.err(format!("{name} resumed, but pid {pid} left {} unfinished", p.name))),
                None if KNOWN.contains(&name) => {
                    Err(self.err(format!("{name} resumed, but pid {pid} has no unfinished call")))
                }
                None => {
                    *self.summary.unknown_syscalls.entry(name.to_string()).or_default() += 1;
                    Ok(())
                }
            };
        }
        let Some(name) = call_name(rest) else {
            self.summary.dropped.other_lines += 1;
            return Ok(());
        };
        if let Some(text) = rest.strip_suffix(" <unfinished ...>") {
            self.pending.insert(pid, Pending { name: name.to_string(), text: text.to_string(), t_us });
            return Ok(());
        }
        self.call(pid, t_us, rest)
    }

    fn call(&mut self, pid: u32, t_us: u64, text: &str) -> Result<()> {
        let name = call_name(text).unwrap_or_default();
        if !KNOWN.contains(&name) {
            *self.summary.unknown_syscalls.entry(name.to_string()).or_default() += 1;
            return Ok(());
        }
        let call = parse_call(text).map_err(|reason| self.err(format!("{name}: {reason}")))?;
        self.summary.calls += 1;
        self.apply(pid, t_us, &call).map_err(|reason| self.err(format!("{name}: {reason}")))
    }

    fn arg<'c>(call: &Call<'c>, i: usize) -> Result<&'c str, String> {
        call.args.get(i).copied().ok_or_else(|| format!("expected at least {} arguments", i + 1))
    }

    fn apply(&mut self, pid: u32, t: u64, call: &Call) -> Result<(), String> {
        match call.name {
            "openat" | "open" => {
                let (dir, path_arg) = if call.name == "openat" {
                    (fd_arg(Self::arg(call, 0)?)?, Self::arg(call, 1)?)
                } else {
                    ((AT_FDCWD, None), Self::arg(call, 0)?)
                };
                let asked = string_arg(path_arg)?;
                match &call.ret {
                    Ret::Ok(fd, Some(host)) => {
                        self.fds.open(*fd, host);
                        if let Some(path) = self.host_path(host) {
                            self.push(t, pid, path, Access::Open);
                        }
                    }
                    Ret::Ok(_, None) | Ret::Err => {
                        let access = if call.ret == Ret::Err { Access::Stat } else { Access::Open };
                        if let Some(path) = self.resolve(pid, dir.1.as_deref(), &asked) {
                            self.push(t, pid, path, access);
                        }
                    }
                    Ret::Unknown => self.summary.dropped.failed += 1,
                }
            }
            "read" | "readv" | "pread64" | "preadv" => {
                let fd = fd_arg(Self::arg(call, 0)?)?;
                let explicit = match call.name {
                    "pread64" | "preadv" => Some(int_arg(Self::arg(call, 3)?)?),
                    _ => None,
                };
                let n = match call.ret {
                    Ret::Ok(n, _) if n > 0 => n as u64,
                    Ret::Ok(..) => {
                        self.summary.dropped.empty_reads += 1;
                        return Ok(());
                    }
                    Ret::Err | Ret::Unknown => {
                        self.summary.dropped.failed += 1;
                        return Ok(());
                    }
                };
                let Some(path) = self.fd_path(&fd) else { return Ok(()) };
                let offset = match explicit {
                    Some(off) => u64::try_from(off).map_err(|_| format!("negative offset {off}"))?,
                    None => match self.fds.read(&fd, n) {
                        ReadAt::Offset(p) => p,
                        ReadAt::UnknownOffset | ReadAt::NotOpen => {
                            self.summary.dropped.unknown_offset += 1;
                            return Ok(());
                        }
                    },
                };
                self.push(t, pid, path, Access::Read { offset, len: n });
            }
            "mmap" => {
                let len = int_arg(Self::arg(call, 1)?)?;
                let fd = fd_arg(Self::arg(call, 4)?)?;
                let offset = int_arg(Self::arg(call, 5)?)?;
                if fd.0 < 0 {
                    self.summary.dropped.not_a_file += 1;
                    return Ok(());
                }
                if !matches!(call.ret, Ret::Ok(..)) {
                    self.summary.dropped.failed += 1;
                    return Ok(());
                }
                let (Ok(offset), Ok(len @ 1..)) = (u64::try_from(offset), u64::try_from(len)) else {
                    return Err(format!("offset {offset} or length {len} out of range"));
                };
                if let Some(path) = self.fd_path(&fd) {
                    self.push(t, pid, path, Access::Mmap { offset, len });
                }
            }
            "lseek" => {
                let fd = fd_arg(Self::arg(call, 0)?)?;
                Self::arg(call, 2)?; // whence: the returned offset already accounts for it
                match call.ret {
                    Ret::Ok(pos, _) => {
                        let pos = u64::try_from(pos).map_err(|_| format!("negative result {pos}"))?;
                        self.fds.seek(&fd, pos);
                    }
                    Ret::Err | Ret::Unknown => self.summary.dropped.failed += 1,
                }
            }
            "close" => {
                let fd = fd_arg(Self::arg(call, 0)?)?;
                self.fds.close(&fd);
            }
            "chroot" => {
                let target = string_arg(Self::arg(call, 0)?)?;
                let into_root = !target.starts_with(b"/") || normalize(&target) == self.root_or_slash();
                match call.ret {
                    Ret::Ok(..) if into_root => {
                        self.inside.insert(pid);
                        self.chrooted = true;
                    }
                    Ret::Ok(..) => {}
                    Ret::Err | Ret::Unknown => self.summary.dropped.failed += 1,
                }
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let old = fd_arg(Self::arg(call, 0)?)?;
                if call.name == "fcntl" && !Self::arg(call, 1)?.starts_with("F_DUPFD") {
                    return Ok(());
                }
                if let Ret::Ok(new, annot) = &call.ret {
                    self.fds.dup(&old, *new, annot.clone());
                }
            }
            other => unreachable!("{other} is in KNOWN but has no handler"),
        }
        Ok(())
    }

    fn push(&mut self, t: u64, pid: u32, path: TracePath, access: Access) {
        self.raw.push((t, pid, path, access));
    }

    /// The trace path of a descriptor, or `None` (counted) when it has none inside the root.
    fn fd_path(&mut self, fd: &Fd) -> Option<TracePath> {
        match &fd.1 {
            Some(host) if host.starts_with(b"/") => self.host_path(&host.clone()),
            _ => {
                self.summary.dropped.not_a_file += 1;
                None
            }
        }
    }

    /// A host path (as `-y` shows it) inside the root, or `None` (counted).
    fn host_path(&mut self, host: &[u8]) -> Option<TracePath> {
        if !host.starts_with(b"/") {
            self.summary.dropped.not_a_file += 1;
            return None;
        }
        let p = strip_root(&normalize(host), &self.root);
        if p.is_none() {
            self.summary.dropped.outside_root += 1;
        }
        p
    }

    /// ROOT as `normalize` spells it (`/` for the host's own root).
    fn root_or_slash(&self) -> Vec<u8> {
        if self.root.is_empty() { b"/".to_vec() } else { self.root.clone() }
    }

    /// The path process `pid` asked for, relative to directory descriptor path `dir` (see module
    /// docs).
    fn resolve(&mut self, pid: u32, dir: Option<&[u8]>, asked: &[u8]) -> Option<TracePath> {
        let dir_inside = self.inside.contains(&pid)
            || dir.is_some_and(|d| strip_root(&normalize(d), &self.root).is_some());
        if asked.starts_with(b"/") {
            let host = normalize(asked);
            if let Some(p) = strip_root(&host, &self.root) {
                return Some(p);
            }
            if dir_inside {
                return TracePath::new(host).ok();
            }
            self.summary.dropped.outside_root += 1;
            return None;
        }
        match dir {
            Some(d) => {
                let mut joined = d.to_vec();
                joined.push(b'/');
                joined.extend_from_slice(asked);
                self.host_path(&joined)
            }
            None => {
                self.summary.dropped.unresolved += 1;
                None
            }
        }
    }

    fn finish(mut self, opts: &ImportOptions) -> Import {
        self.raw.sort_by_key(|r| r.0);
        let mut threads: HashMap<u32, u32> = HashMap::new();
        let mut by_op: BTreeMap<Op, u64> = Op::ALL.iter().map(|&op| (op, 0)).collect();
        let records: Vec<Record> = self
            .raw
            .into_iter()
            .map(|(t_us, pid, path, access)| {
                let next = threads.len() as u32;
                let thread = *threads.entry(pid).or_insert(next);
                *by_op.entry(access.op()).or_default() += 1;
                Record { t_us, done_us: None, thread, path, access }
            })
            .collect();
        self.summary.records = records.len() as u64;
        self.summary.threads = threads.len() as u32;
        self.summary.by_op = by_op;
        Import { header: Header::new("strace", opts.command.clone()), records, summary: self.summary }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lines    {}", self.lines)?;
        writeln!(f, "calls    {} understood", self.calls)?;
        writeln!(f, "records  {} kept, {} threads", self.records, self.threads)?;
        let mut t = Table::new(["kept", "records"]);
        for (op, n) in &self.by_op {
            t.row([op.to_string(), n.to_string()]);
        }
        write!(f, "{t}")?;
        let d = &self.dropped;
        let mut t = Table::new(["dropped", "count"]);
        for (why, n) in [
            ("outside root", d.outside_root),
            ("not a file", d.not_a_file),
            ("unresolved relative path", d.unresolved),
            ("failed call", d.failed),
            ("empty read (EOF)", d.empty_reads),
            ("unknown offset", d.unknown_offset),
            ("signal, exit, other line", d.other_lines),
        ] {
            t.row([why.to_string(), n.to_string()]);
        }
        for (name, n) in &self.unknown_syscalls {
            t.row([format!("unknown syscall {name}"), n.to_string()]);
        }
        write!(f, "{t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/tmp/rootfs";

    fn run(text: &str) -> Result<Import> {
        import(text.as_bytes(), "t.strace", &ImportOptions { root: ROOT.into(), command: "cmd".into() })
    }

    /// (t_us, thread, path, access) of every record.
    fn records(text: &str) -> Vec<(u64, u32, String, Access)> {
        run(text)
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.t_us, r.thread, r.path.escaped(), r.access))
            .collect()
    }

    fn accesses(text: &str) -> Vec<(String, Access)> {
        records(text).into_iter().map(|(_, _, p, a)| (p, a)).collect()
    }

    fn p(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn open_read_lseek_close_track_offsets() {
        let text = r#"100 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/etc/a", O_RDONLY|O_CLOEXEC) = 3</tmp/rootfs/etc/a>
100 10:00:00.000010 read(3</tmp/rootfs/etc/a>, "\177ELF\2\1"..., 832) = 832
100 10:00:00.000020 read(3</tmp/rootfs/etc/a>, "x, y) = 3\"", 100) = 100
100 10:00:00.000030 lseek(3</tmp/rootfs/etc/a>, 4096, SEEK_SET) = 4096
100 10:00:00.000040 read(3</tmp/rootfs/etc/a>, "", 10) = 10
100 10:00:00.000050 lseek(3</tmp/rootfs/etc/a>, -6, SEEK_CUR) = 4100
100 10:00:00.000060 read(3</tmp/rootfs/etc/a>, "", 1) = 1
100 10:00:00.000070 lseek(3</tmp/rootfs/etc/a>, 0, SEEK_END) = 9000
100 10:00:00.000080 read(3</tmp/rootfs/etc/a>, "", 4096) = 0
100 10:00:00.000090 pread64(3</tmp/rootfs/etc/a>, "abc", 3, 64) = 3
100 10:00:00.000100 read(3</tmp/rootfs/etc/a>, "", 4096) = 0
100 10:00:00.000110 close(3</tmp/rootfs/etc/a>) = 0
"#;
        let got = accesses(text);
        assert_eq!(
            got,
            [
                (p("/etc/a"), Access::Open),
                (p("/etc/a"), Access::Read { offset: 0, len: 832 }),
                (p("/etc/a"), Access::Read { offset: 832, len: 100 }),
                (p("/etc/a"), Access::Read { offset: 4096, len: 10 }),
                (p("/etc/a"), Access::Read { offset: 4100, len: 1 }),
                (p("/etc/a"), Access::Read { offset: 64, len: 3 }),
            ]
        );
        let s = run(text).unwrap().summary;
        assert_eq!(s.dropped.empty_reads, 2);
        assert_eq!(s.calls, 12);
        assert_eq!(records(text)[3].0, 40);
    }

    #[test]
    fn after_chroot_without_chdir_absolute_paths_are_the_chroots_view() {
        // Python's os.chroot keeps the working directory outside the root: the cwd annotation is
        // the host's /work, while the program asks for paths as the chroot sees them.
        let text = r#"7 10:00:00.000000 openat(AT_FDCWD</work>, "/etc/ld.so.cache", O_RDONLY) = 3</etc/ld.so.cache>
7 10:00:00.000001 openat(AT_FDCWD</work>, "/etc/missing-before", O_RDONLY) = -1 ENOENT (No such file or directory)
7 10:00:00.000002 chroot("/tmp/rootfs") = 0
7 10:00:00.000003 openat(AT_FDCWD</work>, "/usr/lib/python3/missing.py", O_RDONLY) = -1 ENOENT (No such file or directory)
7 10:00:00.000004 openat(AT_FDCWD</work>, "/etc/hosts", O_RDONLY) = 3</tmp/rootfs/etc/hosts>
7 10:00:00.000005 openat(AT_FDCWD</work>, "relative.txt", O_RDONLY) = -1 ENOENT (No such file or directory)
8 10:00:00.000006 openat(AT_FDCWD</work>, "/bin/missing", O_RDONLY) = -1 ENOENT (No such file or directory)
7 10:00:00.000007 chroot("/elsewhere") = -1 EPERM (Operation not permitted)
"#;
        let got = accesses(text);
        assert_eq!(
            got,
            [
                (p("/usr/lib/python3/missing.py"), Access::Stat),
                (p("/etc/hosts"), Access::Open),
                (p("/bin/missing"), Access::Stat), // a child forked after the chroot
            ]
        );
        let d = run(text).unwrap().summary.dropped;
        // The host's ld.so.cache and the failed lookup before chroot(); the relative path is
        // relative to the host cwd, outside the root.
        assert_eq!((d.outside_root, d.failed), (3, 1));
    }

    #[test]
    fn close_then_reuse_of_the_number_starts_a_new_description() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/a", O_RDONLY) = 3</tmp/rootfs/a>
1 10:00:00.000001 read(3</tmp/rootfs/a>, "", 50) = 50
1 10:00:00.000002 close(3</tmp/rootfs/a>) = 0
1 10:00:00.000003 openat(AT_FDCWD</tmp/rootfs>, "/b", O_RDONLY) = 3</tmp/rootfs/b>
1 10:00:00.000004 read(3</tmp/rootfs/b>, "", 50) = 20
1 10:00:00.000005 read(3</tmp/rootfs/a>, "", 50) = 20
"#;
        let got = accesses(text);
        assert_eq!(got[3], (p("/b"), Access::Read { offset: 0, len: 20 }));
        assert_eq!(got.len(), 4, "the read of the closed /a has no offset: {got:?}");
        assert_eq!(run(text).unwrap().summary.dropped.unknown_offset, 1);
    }

    #[test]
    fn dup_shares_the_offset() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/a", O_RDONLY) = 3</tmp/rootfs/a>
1 10:00:00.000001 read(3</tmp/rootfs/a>, "", 50) = 50
1 10:00:00.000002 fcntl(3</tmp/rootfs/a>, F_DUPFD_CLOEXEC, 0) = 4</tmp/rootfs/a>
1 10:00:00.000003 close(3</tmp/rootfs/a>) = 0
1 10:00:00.000004 read(4</tmp/rootfs/a>, "", 50) = 5
1 10:00:00.000005 dup2(4</tmp/rootfs/a>, 9) = 9</tmp/rootfs/a>
1 10:00:00.000006 read(9</tmp/rootfs/a>, "", 50) = 5
1 10:00:00.000007 fcntl(9</tmp/rootfs/a>, F_GETFL) = 0x8000 (flags O_RDONLY|O_LARGEFILE)
"#;
        let got = accesses(text);
        assert_eq!(got[2].1, Access::Read { offset: 50, len: 5 });
        assert_eq!(got[3].1, Access::Read { offset: 55, len: 5 });
    }

    #[test]
    fn unfinished_and_resumed_calls_are_joined_at_their_start_time() {
        let text = r#"7 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/a", O_RDONLY) = 3</tmp/rootfs/a>
7 10:00:00.000100 read(3</tmp/rootfs/a>,  <unfinished ...>
8 10:00:00.000150 openat(AT_FDCWD</tmp/rootfs>, "/b", O_RDONLY <unfinished ...>
7 10:00:00.000200 <... read resumed>"abc"..., 4096) = 4096
9 10:00:00.000210 futex(0x7f, FUTEX_WAKE_PRIVATE, 1 <unfinished ...>
8 10:00:00.000250 <... openat resumed>) = 4</tmp/rootfs/b>
9 10:00:00.000260 <... futex resumed>) = 0
"#;
        let got = records(text);
        assert_eq!(
            got,
            [
                (0, 0, p("/a"), Access::Open),
                (100, 0, p("/a"), Access::Read { offset: 0, len: 4096 }),
                (150, 1, p("/b"), Access::Open),
            ]
        );
        assert_eq!(run(text).unwrap().summary.unknown_syscalls["futex"], 1);
        let orphan = "7 10:00:00.000200 <... read resumed>\"abc\", 4096) = 4096\n";
        assert_eq!(
            run(orphan).unwrap_err().to_string(),
            "t.strace:1: read resumed, but pid 7 has no unfinished call"
        );
    }

    #[test]
    fn failed_opens_become_stats_of_the_asked_path() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/usr/lib/python3.11/x.py", O_RDONLY) = -1 ENOENT (No such file or directory)
1 10:00:00.000001 openat(AT_FDCWD</tmp/rootfs/usr>, "lib/../share/y", O_RDONLY) = -1 ENOENT (No such file or directory)
1 10:00:00.000002 openat(3</tmp/rootfs/usr/lib>, "z", O_RDONLY) = -1 EACCES (Permission denied)
1 10:00:00.000003 openat(AT_FDCWD</tmp>, "/etc/host-only", O_RDONLY) = -1 ENOENT (No such file or directory)
1 10:00:00.000004 openat(AT_FDCWD, "rel", O_RDONLY) = -1 ENOENT (No such file or directory)
1 10:00:00.000005 open("/tmp/rootfs/etc/old", O_RDONLY) = -1 ENOENT (No such file or directory)
"#;
        let got = accesses(text);
        assert_eq!(
            got,
            [
                (p("/usr/lib/python3.11/x.py"), Access::Stat),
                (p("/usr/share/y"), Access::Stat),
                (p("/usr/lib/z"), Access::Stat),
                (p("/etc/old"), Access::Stat),
            ]
        );
        let d = run(text).unwrap().summary.dropped;
        assert_eq!((d.outside_root, d.unresolved), (1, 1));
    }

    #[test]
    fn opens_record_the_resolved_descriptor_path() {
        // The loader asks for /lib/...; the descriptor shows where the symlink led.
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</tmp/rootfs/usr/lib/x86_64-linux-gnu/libc.so.6>"#;
        assert_eq!(accesses(text), [(p("/usr/lib/x86_64-linux-gnu/libc.so.6"), Access::Open)]);
    }

    #[test]
    fn mmap_of_a_file_is_kept_and_anonymous_maps_are_not_files() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</tmp/rootfs/lib/libc.so.6>
1 10:00:00.000001 mmap(NULL, 1974096, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3</tmp/rootfs/lib/libc.so.6>, 0) = 0x7f5883610000
1 10:00:00.000002 mmap(0x7f5883636000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3</tmp/rootfs/lib/libc.so.6>, 0x26000) = 0x7f5883636000
1 10:00:00.000003 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f58837fb000
1 10:00:00.000004 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3</tmp/rootfs/lib/libc.so.6>, 0) = -1 ENOMEM (Cannot allocate memory)
"#;
        let got = accesses(text);
        assert_eq!(got[1].1, Access::Mmap { offset: 0, len: 1974096 });
        assert_eq!(got[2].1, Access::Mmap { offset: 0x26000, len: 1400832 });
        assert_eq!(got.len(), 3);
        let d = run(text).unwrap().summary.dropped;
        assert_eq!((d.not_a_file, d.failed), (1, 1));
    }

    #[test]
    fn paths_outside_the_root_are_dropped_and_counted() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp>, "/lib/libc.so.6", O_RDONLY) = 3</usr/lib/libc.so.6>
1 10:00:00.000001 read(3</usr/lib/libc.so.6>, "", 832) = 832
1 10:00:00.000002 openat(AT_FDCWD</tmp/rootfs>, "/proc/self/maps", O_RDONLY) = 4</proc/1/maps>
1 10:00:00.000003 read(0<pipe:[1234]>, "", 10) = 10
1 10:00:00.000004 read(5<socket:[99]>, "", 10) = 3
1 10:00:00.000005 openat(AT_FDCWD</tmp/rootfs>, "/tmp/rootfsX", O_RDONLY) = 6</tmp/rootfsX>
"#;
        assert!(accesses(text).is_empty());
        let d = run(text).unwrap().summary.dropped;
        assert_eq!((d.outside_root, d.not_a_file), (4, 2));
    }

    #[test]
    fn non_utf8_paths_keep_their_bytes() {
        let text = r#"1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, "/data/caf\351", O_RDONLY) = 3</tmp/rootfs/data/caf\351>
1 10:00:00.000001 openat(AT_FDCWD</tmp/rootfs>, "/data/\xc3\xa9t\xc3\xa9 a\76b", O_RDONLY) = 4</tmp/rootfs/data/\xc3\xa9t\xc3\xa9 a\x3eb>
1 10:00:00.000002 openat(AT_FDCWD</tmp/rootfs>, "/data/q\"uo\\te", O_RDONLY) = -1 ENOENT (No such file or directory)
"#;
        let imp = run(text).unwrap();
        let paths: Vec<&[u8]> = imp.records.iter().map(|r| r.path.as_bytes()).collect();
        assert_eq!(paths, [&b"/data/caf\xe9"[..], "/data/été a>b".as_bytes(), b"/data/q\"uo\\te"]);
        assert_eq!(imp.records[0].path.escaped(), "/data/caf%E9");
    }

    #[test]
    fn threads_are_numbered_in_order_of_first_appearance_and_time_is_relative() {
        let text = r#"50 10:00:01.000000 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f58837fb000
60 10:00:01.000005 openat(AT_FDCWD</tmp/rootfs>, "/x", O_RDONLY) = 3</tmp/rootfs/x>
50 10:00:01.000009 openat(AT_FDCWD</tmp/rootfs>, "/y", O_RDONLY) = 4</tmp/rootfs/y>
60 10:00:01.000012 openat(AT_FDCWD</tmp/rootfs>, "/z", O_RDONLY) = 5</tmp/rootfs/z>
"#;
        let got: Vec<(u64, u32)> = records(text).into_iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, [(5, 0), (9, 1), (12, 0)]);
    }

    #[test]
    fn epoch_timestamps_syscall_times_and_terminal_pid_prefixes_are_accepted() {
        let text = r#"1700000000.000100 openat(AT_FDCWD</tmp/rootfs>, "/x", O_RDONLY) = 3</tmp/rootfs/x> <0.000012>
[pid  42] 1700000000.000300 read(3</tmp/rootfs/x>, "ab", 2) = 2 <0.000003>
"#;
        let got = records(text);
        assert_eq!(got[1], (200, 1, p("/x"), Access::Read { offset: 0, len: 2 }));
    }

    #[test]
    fn midnight_wrap_keeps_time_increasing() {
        let text = r#"1 23:59:59.999990 openat(AT_FDCWD</tmp/rootfs>, "/x", O_RDONLY) = 3</tmp/rootfs/x>
1 00:00:00.000010 read(3</tmp/rootfs/x>, "ab", 2) = 2
"#;
        assert_eq!(records(text)[1].0, 20);
    }

    #[test]
    fn garbage_unknown_syscalls_and_events_are_skipped_and_counted() {
        let text = r#"strace: Process 123 attached
1 10:00:00.000000 newfstatat(AT_FDCWD</tmp/rootfs>, "/x", {st_mode=S_IFREG|0644, st_size=5, ...}, 0) = 0
1 10:00:00.000001 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2} ---
1 10:00:00.000002 +++ exited with 0 +++

"#;
        let s = run(text).unwrap().summary;
        assert_eq!(s.records, 0);
        assert_eq!(s.unknown_syscalls["newfstatat"], 1);
        assert_eq!(s.dropped.other_lines, 4);
        assert_eq!(s.lines, 5);
    }

    #[test]
    fn malformed_known_calls_are_errors_naming_the_line() {
        let cases = [
            ("1 10:00:00.000000 read(3</tmp/rootfs/x>, \"ab\", 2", "read: unterminated argument list"),
            (
                "1 10:00:00.000000 read(3</tmp/rootfs/x>, \"ab\", 2) = lots",
                "read: result \"lots\" is not a number",
            ),
            ("1 10:00:00.000000 mmap(NULL, 8192) = 0x1000", "mmap: expected at least 5 arguments"),
            (
                "1 10:00:00.000000 openat(AT_FDCWD</tmp/rootfs>, /x, O_RDONLY) = 3",
                "openat: expected a quoted string",
            ),
            ("1 10:00:00.000000 lseek(x</tmp/rootfs/x>, 0, SEEK_SET) = 0", "lseek: descriptor"),
        ];
        for (line, why) in cases {
            let text = format!("1 10:00:00.000000 close(9) = 0\n{line}\n");
            let e = run(&text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("t.strace:2: {why}")), "{line}: {e}");
        }
    }
}
