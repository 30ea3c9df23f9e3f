#!/usr/bin/env python3
"""fs_check.py - precise syscall checks against a storefs mount, for the
t2x-mount integration tests. Usage: fs_check.py COMMAND ARGS...; exits 0
when the check holds, 1 with a message on stderr otherwise."""
import base64
import ctypes
import errno
import os
import random
import stat
import subprocess
import sys
import threading

libc = ctypes.CDLL(None, use_errno=True)


def fail(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.exit(1)


def expect_errno(code, fn, *args, **kw):
    """Calls fn; it must raise OSError with errno `code`."""
    try:
        fn(*args, **kw)
    except OSError as e:
        if e.errno != code:
            fail("%s%r: errno %s, expected %s" % (fn.__name__, args, errno.errorcode.get(
                e.errno, e.errno), errno.errorcode[code]))
        return
    fail("%s%r succeeded, expected %s" % (fn.__name__, args, errno.errorcode[code]))


def raw_getxattr(path, name, size):
    """getxattr(2) with an explicit buffer size: (length or -1, errno)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.getxattr(path.encode(), name.encode(), buf if size else None, ctypes.c_size_t(size))
    return n, ctypes.get_errno() if n < 0 else 0


def raw_listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.listxattr(path.encode(), buf if size else None, ctypes.c_size_t(size))
    return n, ctypes.get_errno() if n < 0 else 0


def b3_text(path):
    hexd = subprocess.check_output(["b3sum", "--no-names", path]).decode().strip()
    return "blake3-" + base64.b64encode(bytes.fromhex(hexd)).decode()


# --- commands ---

def cmd_errno(name, fn, *args):
    """errno NAME OP PATH [PATH2]: OP must fail with errno NAME."""
    code = getattr(errno, name)
    ops = {
        "stat": os.stat, "lstat": os.lstat, "listdir": os.listdir,
        "readlink": os.readlink, "open_read": lambda p: open(p, "rb").read(),
        "create": lambda p: open(p, "w"), "open_write": lambda p: open(p, "r+"),
        "mkdir": os.mkdir, "unlink": os.unlink, "rmdir": os.rmdir,
        "rename": os.rename, "chmod": lambda p: os.chmod(p, 0o777),
        "chown": lambda p: os.chown(p, 1, 1), "truncate": lambda p: os.truncate(p, 0),
        "symlink": lambda p: os.symlink("x", p), "link": os.link,
        "setxattr": lambda p: os.setxattr(p, "user.x", b"1"),
        "removexattr": lambda p: os.removexattr(p, "user.storefs.castore.blob.digest"),
        "utime": lambda p: os.utime(p, (5, 5)),
        "getxattr": lambda p, n: os.getxattr(p, n),
    }
    expect_errno(code, ops[fn], *args)


def cmd_attrs(path, kind, mode, size):
    """attrs PATH KIND MODE SIZE: lstat matches (kind f|d|l, octal mode)."""
    st = os.lstat(path)
    kinds = {"f": stat.S_ISREG, "d": stat.S_ISDIR, "l": stat.S_ISLNK}
    if not kinds[kind](st.st_mode):
        fail("%s: wrong type %o" % (path, st.st_mode))
    if stat.S_IMODE(st.st_mode) != int(mode, 8):
        fail("%s: mode %o, expected %s" % (path, stat.S_IMODE(st.st_mode), mode))
    if st.st_size != int(size):
        fail("%s: size %d, expected %s" % (path, st.st_size, size))
    if (st.st_uid, st.st_gid, st.st_nlink) != (0, 0, 1):
        fail("%s: uid/gid/nlink %d/%d/%d" % (path, st.st_uid, st.st_gid, st.st_nlink))
    for t in (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns):
        if t != 1_000_000_000:
            fail("%s: a timestamp is %d ns, expected 1 s" % (path, t))
    if st.st_blocks != (st.st_size + 511) // 512:
        fail("%s: %d blocks for %d bytes" % (path, st.st_blocks, st.st_size))
    if st.st_blksize != 4096:
        fail("%s: blksize %d" % (path, st.st_blksize))


def cmd_same_ino(*paths):
    inos = {os.lstat(p).st_ino for p in paths}
    if len(inos) != 1:
        fail("inodes differ: %r" % [(p, os.lstat(p).st_ino) for p in paths])


def cmd_diff_ino(a, b):
    if os.lstat(a).st_ino == os.lstat(b).st_ino:
        fail("%s and %s share inode %d" % (a, b, os.lstat(a).st_ino))


def cmd_tree_equal(mnt, src):
    """tree_equal MNT SRC: same names (bytewise order), types, modes' exec
    bits, sizes, symlink targets and file bytes, recursively, using
    scandir (readdirplus) only."""
    ents = sorted(os.listdir(src), key=os.fsencode)
    got = os.listdir(mnt)
    if got != ents:
        fail("%s: listing %r, expected %r" % (mnt, got, ents))
    for de in os.scandir(mnt):
        s = os.path.join(src, de.name)
        sst = os.lstat(s)
        st = de.stat(follow_symlinks=False)
        if stat.S_IFMT(st.st_mode) != stat.S_IFMT(sst.st_mode):
            fail("%s: type differs" % de.path)
        if de.is_symlink():
            if os.readlink(de.path) != os.readlink(s):
                fail("%s: target differs" % de.path)
            if st.st_size != len(os.fsencode(os.readlink(s))):
                fail("%s: symlink size %d" % (de.path, st.st_size))
        elif de.is_dir(follow_symlinks=False):
            if st.st_size != len(os.listdir(s)):
                fail("%s: dir size %d, expected %d" % (de.path, st.st_size,
                                                       len(os.listdir(s))))
            cmd_tree_equal(de.path, s)
        else:
            want = 0o555 if sst.st_mode & 0o100 else 0o444
            if stat.S_IMODE(st.st_mode) != want or st.st_size != sst.st_size:
                fail("%s: mode %o size %d" % (de.path, st.st_mode, st.st_size))
            with open(de.path, "rb") as f, open(s, "rb") as g:
                if f.read() != g.read():
                    fail("%s: contents differ" % de.path)


def cmd_listdir_once(mnt, names_file):
    """listdir_once MNT NAMES: the listing holds every name of NAMES exactly
    once (and nothing else); read with a tiny getdents buffer too."""
    want = sorted(open(names_file).read().split())
    got = os.listdir(mnt)
    if len(got) != len(set(got)):
        fail("duplicates in the listing: %d names, %d unique" % (len(got), len(set(got))))
    if sorted(got) != want:
        missing = set(want) - set(got)
        fail("%d names listed, %d expected; missing e.g. %r" % (len(got), len(want),
                                                                list(missing)[:3]))
    got = getdents_small(mnt)
    if sorted(got) != want:
        fail("small-buffer listing: %d names, %d unique, %d expected" % (
            len(got), len(set(got)), len(want)))


def getdents_small(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(300)
    names = []
    try:
        while True:
            n = libc.syscall(217, fd, buf, ctypes.c_size_t(300))  # getdents64
            if n < 0:
                fail("getdents64: errno %d" % ctypes.get_errno())
            if n == 0:
                break
            raw, off = buf.raw[:n], 0
            while off < n:
                reclen = int.from_bytes(raw[off + 16:off + 18], "little")
                name = raw[off + 19:off + reclen].split(b"\0", 1)[0].decode()
                if name not in (".", ".."):
                    names.append(name)
                off += reclen
    finally:
        os.close(fd)
    return names


def cmd_xattrs(mnt_file, src_file, mnt_dir, mnt_link):
    blob = "user.storefs.castore.blob.digest"
    dirx = "user.storefs.castore.directory.digest"
    want = b3_text(src_file)
    if os.getxattr(mnt_file, blob).decode() != want:
        fail("blob digest %r, expected %r" % (os.getxattr(mnt_file, blob), want))
    if os.listxattr(mnt_file) != [blob]:
        fail("file lists %r" % os.listxattr(mnt_file))
    if os.listxattr(mnt_dir) != [dirx]:
        fail("dir lists %r" % os.listxattr(mnt_dir))
    v = os.getxattr(mnt_dir, dirx).decode()
    if len(v) != 51 or not v.startswith("blake3-"):
        fail("dir digest %r" % v)
    if os.listxattr(mnt_link, follow_symlinks=False) != []:
        fail("symlink lists xattrs")
    if raw_getxattr(mnt_file, blob, 0) != (51, 0):
        fail("size query gave %r" % (raw_getxattr(mnt_file, blob, 0),))
    if raw_getxattr(mnt_file, blob, 50) != (-1, errno.ERANGE):
        fail("small buffer gave %r" % (raw_getxattr(mnt_file, blob, 50),))
    if raw_listxattr(mnt_file, 0) != (len(blob) + 1, 0):
        fail("list size query gave %r" % (raw_listxattr(mnt_file, 0),))
    if raw_listxattr(mnt_file, 5) != (-1, errno.ERANGE):
        fail("list small buffer gave %r" % (raw_listxattr(mnt_file, 5),))
    expect_errno(errno.ENODATA, os.getxattr, mnt_file, dirx)
    expect_errno(errno.ENODATA, os.getxattr, mnt_dir, blob)
    expect_errno(errno.ENODATA, os.getxattr, mnt_file, "user.other")
    expect_errno(errno.ENODATA, os.getxattr, mnt_link, blob, follow_symlinks=False)


def cmd_readers(mnt, src, threads="8", rounds="200"):
    """readers MNT SRC [THREADS ROUNDS]: threads read random files (whole or
    at random offsets) and compare with the source tree."""
    files = []
    for root, _, names in os.walk(src):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(os.path.relpath(p, src))
    errors = []

    def work(seed):
        rnd = random.Random(seed)
        for _ in range(int(rounds)):
            rel = rnd.choice(files)
            with open(os.path.join(src, rel), "rb") as g:
                want = g.read()
            with open(os.path.join(mnt, rel), "rb") as f:
                if want and rnd.random() < 0.5:
                    off = rnd.randrange(len(want))
                    n = rnd.randrange(1, 300000)
                    f.seek(off)
                    if f.read(n) != want[off:off + n]:
                        errors.append("%s at %d" % (rel, off))
                elif f.read() != want:
                    errors.append(rel)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        fail("%d bad reads, e.g. %r" % (len(errors), errors[:3]))


def cmd_statfs(mnt):
    sv = os.statvfs(mnt)
    if sv.f_namemax != 255 or sv.f_bsize != 4096 or sv.f_bfree != 0 or sv.f_ffree != 0:
        fail("statvfs %r" % (sv,))
    if sv.f_files < 1 or not sv.f_flag & os.ST_RDONLY:
        fail("statvfs files %d flags %x" % (sv.f_files, sv.f_flag))


def cmd_stats(mnt, max_bytes_per_inode):
    v = os.getxattr(mnt, "user.storefs.stats").decode()
    kv = dict(x.split("=") for x in v.split())
    inodes, nbytes = int(kv["inodes"]), int(kv["bytes"])
    print("%d inodes, %d bytes, %.1f bytes/inode" % (inodes, nbytes, nbytes / inodes))
    if nbytes / inodes > float(max_bytes_per_inode):
        fail("%.1f bytes per inode" % (nbytes / inodes))


if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
