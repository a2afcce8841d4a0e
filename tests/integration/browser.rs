//! Every kind of HTML report (demo, explain --html, simulate --out, sweep --out) rendered in a
//! real headless Chromium (Debian's `chromium`; scripts/install-tools.sh installs it), driven
//! over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages ended by NUL on
//! the child's fds 3 and 4, no websocket). Each page must load with no console error, no
//! uncaught exception and no failed resource load; every chart and the timeline must be present
//! with a non-zero size; the timeline is driven (a cache state selected, a read hovered with the
//! mouse) and what it shows checked against the report's data. Screenshots at a laptop
//! (1366x768) and a phone (390x844) width are saved under target/browser/ as artefacts;
//! `CHUNKLOAD_BLESS=1` also refreshes the demo's copies in docs/figures/.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::support::{chunkload, require_tool, scratch};
use super::teach::demo_run;

const LAPTOP: (u32, u32) = (1366, 768);
const PHONE: (u32, u32) = (390, 844);
const WAIT: Duration = Duration::from_secs(30);

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`; we own them from here on.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A headless Chromium and one page of it, spoken to over the DevTools protocol.
struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next: u64,
    session: String,
    /// Events not yet looked at (console messages, failed loads, load events).
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        require_tool("chromium");
        let profile = scratch();
        let (cmd_read, cmd_write) = pipe();
        let (out_read, out_write) = pipe();
        let (r, w) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        let mut c = Command::new("chromium");
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Move both ends out of the way first, so neither is clobbered by the other's dup2.
                let hi_r = libc::fcntl(r, libc::F_DUPFD, 100);
                let hi_w = libc::fcntl(w, libc::F_DUPFD, 100);
                if hi_r < 0 || hi_w < 0 || libc::dup2(hi_r, 3) < 0 || libc::dup2(hi_w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().expect("start chromium");
        drop((cmd_read, out_write));
        let (tx, rx) = channel();
        let reader = File::from(out_read);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let mut buf = Vec::new();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to: File::from(cmd_write),
            from: rx,
            next: 0,
            session: String::new(),
            events: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let id = target["targetId"].as_str().expect("a target id").to_string();
        let attached = b.call("Target.attachToTarget", json!({"targetId": id, "flatten": true}), false);
        b.session = attached["sessionId"].as_str().expect("a session id").to_string();
        for domain in ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"] {
            b.cmd(domain, json!({}));
        }
        b
    }

    /// Sends a command (on the page's session, or to the browser) and waits for its answer.
    fn call(&mut self, method: &str, params: Value, on_page: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if on_page {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                Ok(v) => self.events.push(v),
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer from chromium in {WAIT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    fn cmd(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params, true)
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self
            .cmd("Runtime.evaluate", json!({"expression": js, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{js}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    fn viewport(&mut self, (w, h): (u32, u32)) {
        self.cmd(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600}),
        );
    }

    /// Loads `page` and waits for its load event; the events before it are dropped.
    fn open(&mut self, page: &Path) {
        self.events.clear();
        let url = format!("file://{}", page.canonicalize().unwrap().display());
        let r = self.cmd("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "{url}: {}", r["errorText"]);
        let deadline = Instant::now() + WAIT;
        while !self.events.iter().any(|e| e["method"] == "Page.loadEventFired") {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) => self.events.push(v),
                Err(e) => panic!("{url}: no load event ({e:?})"),
            }
        }
        // Let the page's script run its first layout.
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
    }

    /// Console errors, uncaught exceptions and failed loads since the page was opened.
    fn problems(&mut self) -> Vec<String> {
        while let Ok(v) = self.from.try_recv() {
            self.events.push(v);
        }
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                    "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        Some(format!("log: {}", p["entry"]))
                    }
                    "Network.loadingFailed" => Some(format!("failed load: {p}")),
                    _ => None,
                }
            })
            .collect()
    }

    fn screenshot(&mut self, path: &Path) {
        let r = self.cmd("Page.captureScreenshot", json!({"format": "png"}));
        let png =
            base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("png data")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", path.display());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Moves the real mouse to a page point (hover, through Chromium's input pipeline).
    fn hover(&mut self, x: f64, y: f64) {
        self.cmd("Input.dispatchMouseEvent", json!({"type": "mouseMoved", "x": x, "y": y}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go (a test artefact, not committed): target/browser/.
fn artefacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("browser")
}

/// Sizes of every inline chart: `[file, width, height]`.
const CHART_SIZES: &str = "[...document.querySelectorAll('figure.chart')].map(f => {
    const r = f.querySelector('svg').getBoundingClientRect();
    return [f.dataset.file, r.width, r.height]; })";

/// Opens `page` at both widths: no problems, every chart drawn, `charts` of them; screenshots of
/// the top of the page as `NAME-laptop.png` and `NAME-phone.png`.
fn check_page(b: &mut Browser, page: &Path, name: &str, charts: usize) {
    for (size, tag) in [(LAPTOP, "laptop"), (PHONE, "phone")] {
        b.viewport(size);
        b.open(page);
        let problems = b.problems();
        assert!(problems.is_empty(), "{name} at {tag}: {problems:#?}");
        let sizes = b.eval(CHART_SIZES);
        let sizes = sizes.as_array().unwrap();
        assert_eq!(sizes.len(), charts, "{name}: charts on the page: {sizes:?}");
        for s in sizes {
            assert!(s[1].as_f64().unwrap() > 50.0 && s[2].as_f64().unwrap() > 50.0, "{name} at {tag}: {s}");
            // A chart fits the page's width: no sideways scrolling to read it.
            assert!(s[1].as_f64().unwrap() <= f64::from(size.0), "{name} at {tag}: {s}");
        }
        let wide = b.eval("document.documentElement.scrollWidth");
        if wide.as_f64().unwrap() > f64::from(size.0) + 1.0 {
            let over = b.eval(&format!(
                "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {})
                   .slice(0, 5).map(e => e.tagName + '.' + e.className)",
                size.0 + 1
            ));
            panic!("{name} at {tag}: page {wide} px wide; too wide: {over}");
        }
        b.screenshot(&artefacts().join(format!("{name}-{tag}.png")));
    }
}

/// Drives the page's timeline at both widths: every state selectable, its bars the start's
/// device reads; a hovered bar shows that read's explain story. Returns the screenshots' paths.
fn check_timeline(b: &mut Browser, page: &Path, name: &str, device_reads: &[u64]) -> Vec<PathBuf> {
    let mut shots = Vec::new();
    for (size, tag) in [(LAPTOP, "laptop"), (PHONE, "phone")] {
        b.viewport(size);
        b.open(page);
        let tl = b.eval(
            "(() => { const t = document.querySelector('.timeline'); t.scrollIntoView();
              const r = t.querySelector('.tl-plot svg').getBoundingClientRect();
              return [r.width, r.height, t.querySelector('.tl-state').options.length]; })()",
        );
        assert!(tl[0].as_f64().unwrap() > 200.0 && tl[1].as_f64().unwrap() > 50.0, "{name} at {tag}: {tl}");
        let states = tl[2].as_u64().unwrap() as usize;
        assert!(states >= device_reads.len(), "{name}: {states} states");
        // Select each state: as many bars as the start had device reads, and the summary says so.
        for (i, reads) in device_reads.iter().enumerate() {
            let got = b.eval(&format!(
                "(() => {{ const t = document.querySelector('.timeline'); const s = t.querySelector('.tl-state');
                  s.value = '{i}'; s.dispatchEvent(new Event('change'));
                  return [t.querySelectorAll('.read').length, t.querySelector('.tl-summary').textContent]; }})()"
            ));
            assert_eq!(got[0].as_u64(), Some(*reads), "{name} state {i}: {got}");
            assert!(got[1].as_str().unwrap().starts_with(&format!("{reads} device reads")), "{got}");
        }
        // The first state again; hover the mouse over its longest read.
        let bar = b.eval(
            "(() => { const t = document.querySelector('.timeline'); const s = t.querySelector('.tl-state');
              s.value = '0'; s.dispatchEvent(new Event('change'));
              const bars = [...t.querySelectorAll('.read')];
              const w = e => e.getBoundingClientRect().width;
              const bar = bars.reduce((a, e) => w(e) > w(a) ? e : a);
              bar.scrollIntoView({block: 'center'});
              const r = bar.getBoundingClientRect();
              return [r.x + r.width / 2, r.y + r.height / 2, bar.querySelector('title').textContent,
                      t.querySelector('.tl-detail').textContent]; })()",
        );
        let before = bar[3].as_str().unwrap().to_string();
        assert!(before.starts_with("Hover over a read"), "{before}");
        b.hover(bar[0].as_f64().unwrap(), bar[1].as_f64().unwrap());
        let shown = b.eval("document.querySelector('.tl-detail').textContent");
        let shown = shown.as_str().unwrap();
        // The bar's title is "OP PATH: TIME"; the detail is explain's story of that read.
        let title = bar[2].as_str().unwrap();
        let (op_path, _) = title.rsplit_once(": ").unwrap();
        assert!(
            shown.lines().any(|l| l.starts_with('#') && l.contains(op_path)),
            "{name} at {tag}: hovered {title:?}, shown {shown:?}"
        );
        assert!(shown.contains("the read waited"), "{shown}");
        assert!(
            shown.contains("served by")
                || shown.contains("fetched it already")
                || shown.contains("already fetching"),
            "{shown}"
        );
        let chosen = b.eval("document.querySelectorAll('.read.chosen').length");
        assert_eq!(chosen, json!(1), "the hovered bar is marked");
        let problems = b.problems();
        assert!(problems.is_empty(), "{name} at {tag}: {problems:#?}");
        let shot = artefacts().join(format!("{name}-timeline-{tag}.png"));
        b.screenshot(&shot);
        shots.push(shot);
    }
    shots
}

#[test]
fn every_report_renders_and_its_timeline_works_in_a_real_browser() {
    let dir = scratch();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // explain --html: the asked state (cold/warm) and the demo's other three.
    let explain = dir.path().join("explain.html");
    chunkload()
        .current_dir(root)
        .args(["explain", "images/oci:hello-py-v2", "--trace", "images/traces/hello-py-v2.trace", "--html"])
        .arg(&explain)
        .assert()
        .success();
    // simulate --out and sweep --out over the tiny region.
    let sim = dir.path().join("sim");
    chunkload()
        .current_dir(root)
        .args(["simulate", "--scenario", "tests/fixtures/tiny-region.toml", "--out"])
        .arg(&sim)
        .assert()
        .success();
    let sweep = dir.path().join("sweep");
    chunkload()
        .current_dir(root)
        .args(["sweep", "--experiment", "fleet", "--scenario", "tests/fixtures/tiny-region.toml"])
        .args(["--grid", "l2.node_capacity=1GiB,4GiB", "--quiet", "--out"])
        .arg(&sweep)
        .assert()
        .success();
    let (demo, _) = demo_run();
    // The demo's page as docs/figures/demo/ commits it: the images folder named `images`, not by
    // this checkout's path (its charts are inline; its data files are beside the original).
    let images = root.join("images").display().to_string();
    let demo_page = dir.path().join("demo.html");
    std::fs::write(
        &demo_page,
        std::fs::read_to_string(demo.join("index.html")).unwrap().replace(&images, "images"),
    )
    .unwrap();

    let mut b = Browser::start();
    check_page(&mut b, &sim.join("index.html"), "simulate", 6);
    let sweep_charts = std::fs::read_dir(&sweep)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    check_page(&mut b, &sweep.join("index.html"), "sweep", sweep_charts);
    check_page(&mut b, &explain, "explain", 0);
    let demo_charts = std::fs::read_dir(demo)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    check_page(&mut b, &demo_page, "demo", demo_charts);

    // The demo's timeline: the four cases of report.json, in order.
    let r: Value = serde_json::from_slice(&std::fs::read(demo.join("report.json")).unwrap()).unwrap();
    let reads: Vec<u64> = r["starts"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["result"]["device_reads"].as_u64().unwrap())
        .collect();
    assert_eq!(reads.len(), 4);
    let demo_shots = check_timeline(&mut b, &demo_page, "demo", &reads);
    // explain's: its first state is the one asked for, whose device reads the JSON report gives.
    let a = chunkload()
        .current_dir(root)
        .args(["explain", "images/oci:hello-py-v2", "--trace", "images/traces/hello-py-v2.trace", "--json"])
        .assert()
        .success();
    let story: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    let asked = story["total"]["lazy"]["device_reads"].as_u64().unwrap();
    check_timeline(&mut b, &explain, "explain", &[asked]);

    if std::env::var_os("CHUNKLOAD_BLESS").is_some() {
        let figures = root.join("docs/figures");
        for (name, from) in [
            ("demo-laptop.png", artefacts().join("demo-laptop.png")),
            ("demo-phone.png", artefacts().join("demo-phone.png")),
            ("demo-timeline-laptop.png", demo_shots[0].clone()),
            ("demo-timeline-phone.png", demo_shots[1].clone()),
        ] {
            std::fs::copy(from, figures.join(name)).unwrap();
        }
    }
}
