//! The line grammar of strace output: the `[pid N]`/pid prefix and timestamp, a call's name,
//! arguments and result (`= value <path>`, `= -1 ERRNO`, `= ?`), descriptor arguments with their
//! `-y` paths, and strace's string escapes. No state: what a call means is the importer's
//! (`mod.rs`) and the descriptor table's (`fds.rs`).

/// A call's result.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ret {
    /// A value, with the `-y` path when the value is a descriptor.
    Ok(i64, Option<Vec<u8>>),
    Err,
    /// `= ?`: the process went away inside the call.
    Unknown,
}

#[derive(Debug)]
pub(super) struct Call<'a> {
    pub name: &'a str,
    pub args: Vec<&'a str>,
    pub ret: Ret,
}

/// A descriptor in a call: its number and the path `-y` printed for it.
pub(super) type Fd = (i64, Option<Vec<u8>>);

/// `AT_FDCWD` as a descriptor number.
pub(super) const AT_FDCWD: i64 = -100;

/// `[pid N] ` or `N ` (with -f), then the timestamp; returns (pid, microseconds, rest).
pub(super) fn split_prefix(line: &str) -> Option<(u32, u64, &str)> {
    let mut rest = line.trim_start();
    let mut pid = 0;
    if let Some(r) = rest.strip_prefix("[pid") {
        let (n, r) = r.trim_start().split_once(']')?;
        pid = n.trim().parse().ok()?;
        rest = r.trim_start();
    } else {
        let (first, r) = rest.split_once(' ')?;
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            pid = first.parse().ok()?;
            rest = r.trim_start();
        }
    }
    let (stamp, r) = rest.split_once(' ')?;
    Some((pid, parse_time(stamp)?, r))
}

/// `HH:MM:SS.ffffff` (-tt) or `SECONDS.ffffff` (-ttt), to microseconds.
pub(super) fn parse_time(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: u64 = format!("{frac:0<6}")[..6].parse().ok()?;
    let secs = if whole.contains(':') {
        let mut parts = whole.split(':');
        let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let num = |x: &str| x.bytes().all(|b| b.is_ascii_digit()).then(|| x.parse::<u64>().ok()).flatten();
        num(h)? * 3600 + num(m)? * 60 + num(s)?
    } else {
        if !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        whole.parse().ok()?
    };
    Some(secs * 1_000_000 + micros)
}

/// The syscall name of `name(...`, if the text starts like a call.
pub(super) fn call_name(text: &str) -> Option<&str> {
    let (name, _) = text.split_once('(')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(name)
}

/// Splits `name(arg, arg, ...) = ret [<T>]`.
pub(super) fn parse_call(text: &str) -> Result<Call<'_>, String> {
    let open = text.find('(').ok_or("no argument list")?;
    let name = &text[..open];
    let b = text.as_bytes();
    let (mut depth, mut i, mut start) = (0usize, open + 1, open + 1);
    let mut args = Vec::new();
    let close = loop {
        let Some(&c) = b.get(i) else { return Err("unterminated argument list".into()) };
        match c {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if i >= b.len() {
                    return Err("unterminated string".into());
                }
            }
            b'<' => {
                i += 1;
                while i < b.len() && b[i] != b'>' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if i >= b.len() {
                    return Err("unterminated <path> annotation".into());
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.checked_sub(1).ok_or("unbalanced brackets")?,
            b')' if depth > 0 => depth -= 1,
            b')' => break i,
            b',' if depth == 0 => {
                args.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    };
    let last = text[start..close].trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last);
    }
    let after = text[close + 1..].trim_start();
    let ret = after.strip_prefix('=').ok_or("no ` = result`")?.trim();
    // -T appends the time spent in the call: ` <0.000012>`.
    let ret = match ret.rfind(" <") {
        Some(k)
            if ret.ends_with('>')
                && ret[k + 2..ret.len() - 1].bytes().all(|c| c.is_ascii_digit() || c == b'.') =>
        {
            ret[..k].trim_end()
        }
        _ => ret,
    };
    Ok(Call { name, args, ret: parse_ret(ret)? })
}

pub(super) fn parse_ret(s: &str) -> Result<Ret, String> {
    if s == "?" || s.starts_with("? ") {
        return Ok(Ret::Unknown);
    }
    if s == "-1" || s.starts_with("-1 ") {
        return Ok(Ret::Err);
    }
    // Value, optional <path>, optional ` (explanation)` such as fcntl's flag names.
    let end = s.find(['<', ' ']).unwrap_or(s.len());
    let value = parse_int(&s[..end]).ok_or_else(|| format!("result {s:?} is not a number"))?;
    let annot = if s[end..].starts_with('<') { Some(annotation(&s[end..])?) } else { None };
    Ok(Ret::Ok(value, annot))
}

/// `<escaped path>` at the start of `s` -> the path's bytes.
pub(super) fn annotation(s: &str) -> Result<Vec<u8>, String> {
    let inner = s.strip_prefix('<').ok_or("expected <path>")?;
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] != b'>' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    if i >= b.len() {
        return Err(format!("unterminated annotation {s:?}"));
    }
    unescape(&inner[..i])
}

/// A descriptor argument: `3`, `3</path>`, `AT_FDCWD</dir>`, `-1`.
pub(super) fn fd_arg(s: &str) -> Result<Fd, String> {
    let end = s.find('<').unwrap_or(s.len());
    let num = match &s[..end] {
        "AT_FDCWD" => AT_FDCWD,
        n => parse_int(n).ok_or_else(|| format!("descriptor {s:?} is not a number"))?,
    };
    let path = if end < s.len() { Some(annotation(&s[end..])?) } else { None };
    Ok((num, path))
}

pub(super) fn int_arg(s: &str) -> Result<i64, String> {
    parse_int(s).ok_or_else(|| format!("argument {s:?} is not a number"))
}

pub(super) fn parse_int(s: &str) -> Option<i64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as i64),
        None => s.parse().ok(),
    }
}

/// A quoted string argument `"..."` (possibly followed by `...` when strace truncated it).
pub(super) fn string_arg(s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_suffix("...").unwrap_or(s);
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| format!("expected a quoted string, got {s:?}"))?;
    unescape(inner)
}

/// strace's C-style escapes: `\\ \" \n \t \r \v \f`, octal `\NNN`, hex `\xHH`.
pub(super) fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or_else(|| format!("dangling backslash in {s:?}"))?;
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let hex = s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.ok_or_else(|| format!("bad \\x escape in {s:?}"))?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v).map_err(|_| format!("octal escape out of range in {s:?}"))?);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_handles_strace_escapes() {
        assert_eq!(unescape(r#"a\tb\n\\\"\0\177\x7f\3770"#).unwrap(), b"a\tb\n\\\"\0\x7f\x7f\xff0");
        assert!(unescape("\\").is_err());
        assert!(unescape("\\xZZ").is_err());
    }

    #[test]
    fn calls_split_into_name_arguments_and_result() {
        let c =
            parse_call(r#"openat(AT_FDCWD</r>, "a,b", O_RDONLY|O_CLOEXEC) = 3</r/a,b> <0.000012>"#).unwrap();
        assert_eq!(c.name, "openat");
        assert_eq!(c.args, [r#"AT_FDCWD</r>"#, r#""a,b""#, "O_RDONLY|O_CLOEXEC"]);
        assert_eq!(c.ret, Ret::Ok(3, Some(b"/r/a,b".to_vec())));
        assert_eq!(parse_call("close(3) = -1 EBADF (Bad file descriptor)").unwrap().ret, Ret::Err);
        assert_eq!(parse_call("read(3, ...) = ?").unwrap().ret, Ret::Unknown);
        assert!(parse_call("read(3, \"x").is_err());
        assert_eq!(fd_arg("AT_FDCWD</dir>").unwrap(), (AT_FDCWD, Some(b"/dir".to_vec())));
        assert_eq!(fd_arg("-1").unwrap(), (-1, None));
        assert_eq!(parse_int("0x10"), Some(16));
    }

    #[test]
    fn prefixes_and_timestamps() {
        assert_eq!(split_prefix("12 10:00:01.5 read(3) = 1"), Some((12, 36_001_500_000, "read(3) = 1")));
        assert_eq!(split_prefix("[pid 7] 1.000002 x"), Some((7, 1_000_002, "x")));
        assert_eq!(split_prefix("--- SIGCHLD ---"), None);
        assert_eq!(parse_time("00:00:00.1234567"), Some(123_456));
        assert_eq!(call_name("exit_group(0) = ?"), Some("exit_group"));
        assert_eq!(call_name("+++ exited"), None);
    }
}
