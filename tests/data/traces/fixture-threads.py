import os, threading
def work(mods):
    for m in mods:
        __import__(m)
ts = [threading.Thread(target=work, args=(l,)) for l in (["json", "email.parser", "decimal"], ["csv", "sqlite3", "xml.dom.minidom"], ["statistics", "fractions", "argparse"])]
[t.start() for t in ts]
[t.join() for t in ts]
fd = os.open(b"/tmp/caf\xe9", os.O_RDONLY)
os.read(fd, 100); os.lseek(fd, -10, os.SEEK_END); os.read(fd, 100); os.lseek(fd, 50, os.SEEK_SET)
d = os.dup(fd); os.read(d, 7); os.lseek(d, 3, os.SEEK_CUR); os.read(fd, 1); os.pread(fd, 5, 9000)
os.close(fd); os.close(d)
try:
    open("/nonexistent/x.py")
except OSError:
    pass
r, w = os.pipe(); os.write(w, b"hi"); os.read(r, 2)
