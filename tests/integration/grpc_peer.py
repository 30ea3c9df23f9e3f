#!/usr/bin/python3
"""grpc_peer.py - the Python gRPC peer of the daemon tests (issue 15): a
client built on Debian's grpcio with messages generated from proto/ by
grpc_tools (lib.sh grpc_py_gen puts them in $GRPC_PY_GEN).

    grpc_peer.py TARGET CHECK [ARGS...]

TARGET is a grpcio target (127.0.0.1:PORT, unix:/path). Every CHECK runs
under both package names (snix.* and tvix.*) and exits non-zero, naming
what differed, if anything is not as docs/grpc.md says."""
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ["GRPC_PY_GEN"])
import grpc  # noqa: E402
import castore_pb2 as cpb  # noqa: E402
import health_pb2 as hpb  # noqa: E402
import pathinfo_pb2 as ppb  # noqa: E402
import rpc_blobstore_pb2 as bpb  # noqa: E402
import rpc_directory_pb2 as dpb  # noqa: E402
import rpc_pathinfo_pb2 as rpb  # noqa: E402

PACKAGES = {"snix": ("snix.castore.v1", "snix.store.v1"), "tvix": ("tvix.castore.v1", "tvix.store.v1")}
SC = grpc.StatusCode
EMPTY = bytes.fromhex("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")


def fail(msg):
    sys.exit("grpc_peer: " + msg)


def expect(got, want, what):
    if got != want:
        fail(f"{what}: got {got!r}, expected {want!r}")


def ser(m):
    return m if isinstance(m, bytes) else m.SerializeToString()


class Peer:
    """Calls by path; raw=True gives the response's bytes as they came."""

    def __init__(self, target, pkg):
        self.ch = grpc.insecure_channel(target)
        self.cas, self.store = PACKAGES[pkg]

    def path(self, service, method):
        pkg = self.store if service == "PathInfoService" else self.cas
        return f"/{pkg}.{service}/{method}"

    def unary(self, service, method, req, resp=None, **kw):
        f = self.ch.unary_unary(self.path(service, method), request_serializer=ser,
                                response_deserializer=resp.FromString if resp else None)
        return f(req, **kw)

    def sstream(self, service, method, req, resp=None, **kw):
        f = self.ch.unary_stream(self.path(service, method), request_serializer=ser,
                                 response_deserializer=resp.FromString if resp else None)
        return f(req, **kw)

    def cstream(self, service, method, reqs, resp=None, **kw):
        f = self.ch.stream_unary(self.path(service, method), request_serializer=ser,
                                 response_deserializer=resp.FromString if resp else None)
        return f(reqs, **kw)

    # the services, by message
    def stat(self, digest, **kw):
        return self.unary("BlobService", "Stat", bpb.StatBlobRequest(digest=digest),
                          bpb.StatBlobResponse, **kw)

    def read(self, digest, **kw):
        return self.sstream("BlobService", "Read", bpb.ReadBlobRequest(digest=digest),
                            bpb.BlobChunk, **kw)

    def put(self, chunks, **kw):
        return self.cstream("BlobService", "Put", (bpb.BlobChunk(data=c) for c in chunks),
                            bpb.PutBlobResponse, **kw).digest

    def dir_get(self, digest, recursive=False, raw=False, **kw):
        return list(self.sstream("DirectoryService", "Get",
                                 dpb.GetDirectoryRequest(digest=digest, recursive=recursive),
                                 None if raw else cpb.Directory, **kw))

    def dir_put(self, dirs, **kw):
        return self.cstream("DirectoryService", "Put", iter(dirs),
                            dpb.PutDirectoryResponse, **kw).root_digest

    def pi_get(self, digest, raw=False, **kw):
        return self.unary("PathInfoService", "Get", rpb.GetPathInfoRequest(by_output_hash=digest),
                          None if raw else ppb.PathInfo, **kw)

    def pi_put(self, pi, **kw):
        return self.unary("PathInfoService", "Put", pi, ppb.PathInfo, **kw)

    def calc(self, entry, **kw):
        return self.unary("PathInfoService", "CalculateNAR", entry, rpb.CalculateNARResponse, **kw)

    def pi_list(self, **kw):
        return list(self.sstream("PathInfoService", "List", rpb.ListPathInfoRequest(),
                                 ppb.PathInfo, **kw))

    def health(self, service=""):
        f = self.ch.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=ser,
                                response_deserializer=hpb.HealthCheckResponse.FromString)
        return f(hpb.HealthCheckRequest(service=service), timeout=10).status


def status_of(fn, *a, **kw):
    """The status code a call ends with (OK if it succeeds)."""
    try:
        r = fn(*a, **kw)
        if hasattr(r, "__iter__") and not isinstance(r, (bytes, list)):
            list(r)
        return SC.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def expect_status(want, fn, *a, **kw):
    code, details = status_of(fn, *a, **kw)
    if code != want:
        fail(f"{fn.__name__}: status {code} ({details}), expected {want}")
    return details


def alive(p):
    expect(p.health(), hpb.HealthCheckResponse.SERVING, "health after the call")


def vectors():
    with open(os.environ["VECTORS"]) as f:
        return json.load(f)


def b3sum(data):
    out = subprocess.run(["b3sum", "--no-names"], input=data, capture_output=True, check=True)
    return bytes.fromhex(out.stdout.decode().strip())


# --- checks ---

def check_health(p, args):
    expect(p.health(), hpb.HealthCheckResponse.SERVING, "overall")
    for svc in ("BlobService", "DirectoryService"):
        expect(p.health(f"{p.cas}.{svc}"), hpb.HealthCheckResponse.SERVING, svc)
    expect(p.health(f"{p.store}.PathInfoService"), hpb.HealthCheckResponse.SERVING, "PathInfo")
    expect_status(SC.NOT_FOUND, p.health, "no.such.Service")
    # Watch: the status, then the stream stays open until the client leaves.
    f = p.ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=ser,
                          response_deserializer=hpb.HealthCheckResponse.FromString)
    w = f(hpb.HealthCheckRequest(service=""))
    expect(next(w).status, hpb.HealthCheckResponse.SERVING, "Watch's first message")
    w.cancel()
    expect_status(SC.UNIMPLEMENTED, p.unary, "NoSuchService", "Get", b"")


def check_blobs(p, args):
    """Every blob vector: Put gives its BLAKE3, Read its bytes, Stat knows it."""
    for b in vectors()["blobs"]:
        if "content_hex" in b:
            data = bytes.fromhex(b["content_hex"])
        else:  # BLOB_B: bytes 0x00..0xFE repeated 4096 times
            data = bytes(range(255)) * 4096
        digest = bytes.fromhex(b["blake3_hex"])
        parts = [data[i:i + 100000] for i in range(0, len(data), 100000)] or []
        expect(p.put(parts).hex(), b["blake3_hex"], b["name"] + " Put")
        expect(b"".join(c.data for c in p.read(digest)), data, b["name"] + " Read")
        expect(list(p.stat(digest).chunks), [], b["name"] + " Stat")


def check_blob_errors(p, args):
    for d in (b"", b"\0" * 31, b"\0" * 33):
        expect_status(SC.INVALID_ARGUMENT, p.stat, d)
        expect_status(SC.INVALID_ARGUMENT, p.read, d)
    missing = bytes.fromhex("10" + "00" * 31)
    expect_status(SC.NOT_FOUND, p.stat, missing)
    expect_status(SC.NOT_FOUND, p.read, missing)


def check_empty_blob(p, args):
    """No message at all, and one empty message: both the empty blob,
    which Read sends as no message."""
    expect(p.put([]), EMPTY, "Put of no message")
    expect(p.put([b""]), EMPTY, "Put of one empty chunk")
    expect(list(p.read(EMPTY)), [], "Read of the empty blob")


def check_large_blob(p, args):
    """A blob of ARGS[0] MiB streams in both directions in chunks, neither
    side holding it whole in one message."""
    size = int(args[0]) << 20
    data = os.urandom(size)
    chunk = 1 << 20
    digest = p.put(data[i:i + chunk] for i in range(0, size, chunk))
    expect(digest, b3sum(data), "the digest Put answers")
    n, h, got = 0, hashlib.sha256(), 0
    for c in p.read(digest):
        n += 1
        got += len(c.data)
        h.update(c.data)
        if len(c.data) > 4 << 20:
            fail(f"Read sent a message of {len(c.data)} bytes")
    expect(got, size, "bytes read")
    expect(h.digest(), hashlib.sha256(data).digest(), "content read")
    if n < size // (4 << 20):
        fail(f"Read sent {n} messages for {size} bytes")


def check_deadline(p, args):
    """A Read or a Put that misses its deadline ends DEADLINE_EXCEEDED and
    the Put stores nothing."""
    data = os.urandom(4 << 20)
    digest = p.put([data])
    expect_status(SC.DEADLINE_EXCEEDED, p.read, digest, timeout=0.001)
    data2 = os.urandom(1 << 20)

    def slow():
        yield data2[:1000]
        time.sleep(1.5)
        yield data2[1000:]
    expect_status(SC.DEADLINE_EXCEEDED, p.put, slow(), timeout=0.5)
    time.sleep(1.5)
    expect_status(SC.NOT_FOUND, p.stat, b3sum(data2))
    alive(p)


def check_cancel(p, args):
    """A Read cancelled after its first message, and a Put cancelled half
    way (which stores nothing): the daemon goes on."""
    data = os.urandom(8 << 20)
    digest = p.put([data])
    it = p.read(digest)
    next(it)
    it.cancel()
    expect_status(SC.CANCELLED, lambda: list(it))
    data2 = os.urandom(1 << 20)
    stop = threading.Event()

    def gen():
        yield bpb.BlobChunk(data=data2[:1000])
        stop.wait(10)
    f = p.ch.stream_unary(p.path("BlobService", "Put"), request_serializer=ser,
                          response_deserializer=bpb.PutBlobResponse.FromString)
    fut = f.future(gen())
    time.sleep(0.5)
    fut.cancel()
    stop.set()
    time.sleep(0.5)
    expect_status(SC.NOT_FOUND, p.stat, b3sum(data2))
    alive(p)


def closures(dirs):
    """Each vector Directory with its closure, leaves first."""
    by = {d["blake3_hex"]: bytes.fromhex(d["encoding_hex"]) for d in dirs}
    out = []
    for d in dirs:
        order, seen = [], set()

        def visit(h):
            if h in seen:
                return
            seen.add(h)
            for c in cpb.Directory.FromString(by[h]).directories:
                visit(c.digest.hex())
            order.append(by[h])
        visit(d["blake3_hex"])
        out.append((d, order))
    return out


def check_directories(p, args):
    """Every Directory vector (set ARGS[0]): Put as a closure gives its
    digest, Get sends its encoding byte for byte, a recursive Get its
    closure root first, each once."""
    dirs = vectors()["directories"][args[0]]
    for d, order in closures(dirs):
        msgs = [cpb.Directory.FromString(b) for b in order]
        expect(p.dir_put(msgs).hex(), d["blake3_hex"], d["name"] + " Put")
        got = p.dir_get(bytes.fromhex(d["blake3_hex"]), raw=True)
        expect([g.hex() for g in got], [d["encoding_hex"]], d["name"] + " Get")
        rec = p.dir_get(bytes.fromhex(d["blake3_hex"]), recursive=True, raw=True)
        expect(rec[0].hex(), d["encoding_hex"], d["name"] + " recursive Get's first")
        expect(sorted(r.hex() for r in rec), sorted(set(o.hex() for o in order)),
               d["name"] + " recursive Get")


def check_dir_errors(p, args):
    dirs = vectors()["directories"][args[0]]
    byname = {d["name"]: bytes.fromhex(d["encoding_hex"]) for d in dirs}
    missing = bytes.fromhex("10" + "00" * 31)
    expect_status(SC.NOT_FOUND, p.dir_get, missing)
    expect(p.dir_get(missing, recursive=True), [], "recursive Get of an unknown root")
    for d in (b"", b"\0" * 31):
        expect_status(SC.INVALID_ARGUMENT, p.dir_get, d)
    expect_status(SC.INVALID_ARGUMENT, p.sstream, "DirectoryService", "Get", b"")  # no by_what
    bad = {
        "a name with a slash": cpb.Directory(files=[cpb.FileEntry(name=b"a/b", digest=EMPTY)]),
        "an empty name": cpb.Directory(files=[cpb.FileEntry(name=b"", digest=EMPTY)]),
        "..": cpb.Directory(symlinks=[cpb.SymlinkEntry(name=b"..", target=b"x")]),
        "unsorted": cpb.Directory(files=[cpb.FileEntry(name=b"b", digest=EMPTY),
                                         cpb.FileEntry(name=b"a", digest=EMPTY)]),
        "a 31-byte digest": cpb.Directory(files=[cpb.FileEntry(name=b"a", digest=EMPTY[:31])]),
        "a dangling reference": cpb.Directory(
            directories=[cpb.DirectoryEntry(name=b"a", digest=missing, size=0)]),
    }
    for what, d in bad.items():
        details = expect_status(SC.INVALID_ARGUMENT, p.dir_put, [d])
        print(f"{what}: {details}")
    # A closure with two roots, and a parent sent before its child.
    b_dir = cpb.Directory.FromString(byname["DIRECTORY_B"])
    a_dir = cpb.Directory()
    keep = cpb.Directory.FromString(byname["DIRECTORY_WITH_KEEP"])
    expect_status(SC.INVALID_ARGUMENT, p.dir_put, [a_dir, keep])
    expect_status(SC.INVALID_ARGUMENT, p.dir_put, [b_dir, a_dir])
    expect_status(SC.INVALID_ARGUMENT, p.dir_put, [])
    # Not a protobuf message at all.
    expect_status(SC.INVALID_ARGUMENT, p.cstream, "DirectoryService", "Put", iter([b"\xff\xff\xff"]))
    alive(p)


def check_path_info(p, args):
    """The PathInfo vector: Put (its symlink root renders to its NAR hash),
    Get answers its encoding byte for byte, List has it; CalculateNAR of
    every entry vector whose content is stored."""
    v = vectors()
    pv = v["pathinfo"][0]
    enc = bytes.fromhex(pv["encoding_hex"])
    pi = ppb.PathInfo.FromString(enc)
    p.pi_put(enc)
    digest = bytes(20)  # 32 nixbase32 zeros
    expect(p.pi_get(digest, raw=True).hex(), pv["encoding_hex"], "Get")
    expect(p.pi_put(enc).SerializeToString(), enc, "a second Put of the same")
    names = [x.entry.symlink.name for x in p.pi_list()]
    if pi.entry.symlink.name not in names:
        fail(f"List: {names}")
    nar = {n["name"]: n for n in v["nar"]}
    for e in v["entries"]:
        entry = cpb.Entry.FromString(bytes.fromhex(e["encoding_hex"]))
        if entry.WhichOneof("entry") == "symlink":
            want = nar["NAR_CONTENTS_SYMLINK"]
        elif entry.WhichOneof("entry") == "file":
            want = nar["NAR_CONTENTS_HELLOWORLD"]
        elif "set S" in e["node"] and args[0] == "spec":
            want = nar["NAR_CONTENTS_COMPLICATED"]
        else:
            continue
        r = p.calc(entry)
        expect(r.nar_sha256.hex(), want["sha256_hex"], e["node"] + " CalculateNAR")
        expect(r.nar_size, len(bytes.fromhex(want["nar_hex"])), e["node"] + " NAR size")


def pathinfo_for(name, root, nar_sha, nar_size, refs=()):
    """A PathInfo for store path 0..0<last>-name (any digest will do)."""
    base = "0" * 31 + name[0] + "-" + name
    entry = cpb.Entry()
    kind = root.WhichOneof("entry")
    getattr(entry, kind).CopyFrom(getattr(root, kind))
    getattr(entry, kind).name = base.encode()
    return ppb.PathInfo(entry=entry, references=list(refs),
                        narinfo=ppb.NARInfo(nar_size=nar_size, nar_sha256=nar_sha))


def check_path_info_errors(p, args):
    v = vectors()
    nar = {n["name"]: n for n in v["nar"]}
    missing = bytes.fromhex("10" + "00" * 31)
    expect_status(SC.INVALID_ARGUMENT, p.pi_get, bytes(19))
    expect_status(SC.INVALID_ARGUMENT, p.pi_get, bytes(21))
    expect_status(SC.UNIMPLEMENTED, p.unary, "PathInfoService", "Get", b"")  # no by_what
    expect_status(SC.NOT_FOUND, p.pi_get, b"\x01" * 20)
    # Malformed, invalid, and claims the content does not bear out.
    expect_status(SC.INVALID_ARGUMENT, p.unary, "PathInfoService", "Put", b"\x0a\xff\x01")
    hello = cpb.Entry(file=cpb.FileEntry(digest=bytes.fromhex(v["blobs"][1]["blake3_hex"]), size=12))
    hw = nar["NAR_CONTENTS_HELLOWORLD"]
    good_sha, good_size = bytes.fromhex(hw["sha256_hex"]), len(bytes.fromhex(hw["nar_hex"]))
    p.put([b"Hello World!"])
    pi = pathinfo_for("hello", hello, good_sha, good_size, refs=[bytes(19)])
    details = expect_status(SC.INVALID_ARGUMENT, p.pi_put, pi)
    print("19-byte reference:", details)
    pi = pathinfo_for("hello", hello, good_sha, good_size + 1)
    print("NAR size:", expect_status(SC.INVALID_ARGUMENT, p.pi_put, pi))
    pi = pathinfo_for("hello", hello, bytes(32), good_size)
    print("NAR hash:", expect_status(SC.INVALID_ARGUMENT, p.pi_put, pi))
    gone = cpb.Entry(file=cpb.FileEntry(digest=missing, size=12))
    pi = pathinfo_for("gone", gone, good_sha, good_size)
    print("root missing:", expect_status(SC.FAILED_PRECONDITION, p.pi_put, pi))
    # A reference whose name does not match its digest.
    pi = pathinfo_for("hello", hello, good_sha, good_size, refs=[b"\x07" * 20])
    pi.narinfo.reference_names.append("0" * 32 + "-x")
    print("reference name:", expect_status(SC.INVALID_ARGUMENT, p.pi_put, pi))
    # A reference that is not registered.
    pi = pathinfo_for("hello", hello, good_sha, good_size, refs=[bytes(20)])
    pi.narinfo.reference_names.append("0" * 32 + "-x")
    print("reference missing:", expect_status(SC.FAILED_PRECONDITION, p.pi_put, pi))
    # Registered, then other content for the same path.
    pi = pathinfo_for("hello", hello, good_sha, good_size)
    expect(p.pi_put(pi).narinfo.nar_sha256, good_sha, "Put's answer")
    sym = cpb.Entry(symlink=cpb.SymlinkEntry(target=b"/nix/store/somewhereelse"))
    sy = nar["NAR_CONTENTS_SYMLINK"]
    pi2 = pathinfo_for("hello", sym, bytes.fromhex(sy["sha256_hex"]), len(bytes.fromhex(sy["nar_hex"])))
    print("other content:", expect_status(SC.ALREADY_EXISTS, p.pi_put, pi2))
    # CalculateNAR: a named entry, and an unknown root.
    expect_status(SC.INVALID_ARGUMENT, p.calc, pathinfo_for("x", sym, b"", 0).entry)
    expect_status(SC.NOT_FOUND, p.calc, gone)
    expect_status(SC.INVALID_ARGUMENT, p.calc, b"\x12\x03\x12\x01\x00")
    alive(p)


def check_read_only(p, args):
    """A daemon without --allow-writes refuses every Put and serves reads."""
    expect_status(SC.PERMISSION_DENIED, p.put, [b"x"])
    expect_status(SC.PERMISSION_DENIED, p.dir_put, [cpb.Directory()])
    expect_status(SC.PERMISSION_DENIED, p.pi_put, ppb.PathInfo())
    expect_status(SC.NOT_FOUND, p.stat, bytes.fromhex("10" + "00" * 31))


def check_slow_put(p, args):
    """A Put that sends a first chunk, creates ARGS[1], waits (up to 30 s)
    for ARGS[0] to appear, then sends the rest: it must complete."""
    data = os.urandom(1 << 20)
    alive(p)  # connected before the Put begins

    def gen():
        yield data[:1000]
        # Time for the call to reach the daemon's handler: a call the
        # daemon has not yet taken when it is told to stop is refused.
        time.sleep(1)
        with open(args[1], "w"):
            pass
        for _ in range(600):
            if os.path.exists(args[0]):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        yield data[1000:]
    expect(p.put(gen(), timeout=20), b3sum(data), "the digest of the Put in flight")


def check_imported(p, args):
    """A tree `storefs import`ed before the daemon started (ARGS: its store
    path's basename, the tree on disk): List has it, Get by its digest
    answers it, CalculateNAR of its root gives its NAR hash, a recursive
    Get is its whole closure, and every file reads back as on disk."""
    base, tree = args
    listed = [x for x in p.pi_list() if x.entry.WhichOneof("entry") and
              getattr(x.entry, x.entry.WhichOneof("entry")).name == base.encode()]
    expect(len(listed), 1, f"'{base}' in List")
    pi = listed[0]
    digest = nix32_decode(base[:32])
    expect(p.pi_get(digest), pi, "Get of the listed path")
    root = cpb.Entry()
    root.directory.CopyFrom(pi.entry.directory)
    root.directory.name = b""
    r = p.calc(root)
    expect((r.nar_sha256, r.nar_size), (pi.narinfo.nar_sha256, pi.narinfo.nar_size),
           "CalculateNAR of the root")
    dirs = {}
    for d in p.dir_get(pi.entry.directory.digest, recursive=True):
        dirs[b3sum(d.SerializeToString())] = d

    def walk(digest, rel):
        d = dirs.pop(digest, None)
        if d is None:
            fail(f"recursive Get lacks '{rel}'")
        for f in d.files:
            data = b"".join(c.data for c in p.read(f.digest))
            with open(os.path.join(tree, rel, f.name.decode()), "rb") as fh:
                expect(data == fh.read(), True, f"content of '{rel}/{f.name.decode()}'")
        for sub in d.directories:
            walk(sub.digest, os.path.join(rel, sub.name.decode()))
    walk(pi.entry.directory.digest, "")
    expect(list(dirs), [], "Directories sent twice or not in the closure")


def check_parallel(p, args):
    """ARGS[0] clients at once, each on its own connection, each reading
    an ARGS[1] MiB blob in full (a mount's readers): every byte right."""
    n, size = int(args[0]), int(args[1]) << 20
    data = os.urandom(size)
    digest = p.put([data[i:i + (1 << 20)] for i in range(0, size, 1 << 20)])
    want = hashlib.sha256(data).digest()
    errors = []

    def reader(i):
        q = Peer(sys.argv[1], "snix" if i % 2 else "tvix")
        try:
            h = hashlib.sha256()
            for c in q.read(digest, timeout=120):
                h.update(c.data)
            if h.digest() != want:
                errors.append(f"reader {i}: wrong bytes")
        except grpc.RpcError as e:
            errors.append(f"reader {i}: {e.code()} {e.details()}")
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail("; ".join(errors))
    alive(p)


def check_reflection(p, args):
    """Server reflection, v1 and v1alpha: the services are listed, and the
    files it sends for a symbol or a file name build a descriptor pool
    (google.protobuf's own parser) that has the services and methods."""
    import reflection_pb2 as fpb
    from google.protobuf import descriptor_pb2, descriptor_pool
    for version in ("v1", "v1alpha"):
        f = p.ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                               request_serializer=ser,
                               response_deserializer=fpb.ServerReflectionResponse.FromString)
        reqs = [fpb.ServerReflectionRequest(host="h", list_services=""),
                fpb.ServerReflectionRequest(file_containing_symbol="snix.castore.v1.BlobService"),
                fpb.ServerReflectionRequest(file_by_filename="rpc_pathinfo.proto"),
                fpb.ServerReflectionRequest(
                    file_containing_symbol="snix.castore.v1.DirectoryService.Get"),
                fpb.ServerReflectionRequest(file_containing_symbol="no.such.Thing")]
        resps = list(f(iter(reqs), timeout=10))
        expect(len(resps), len(reqs), f"{version}: answers")
        names = [s.name for s in resps[0].list_services_response.service]
        for want in ("snix.castore.v1.BlobService", "snix.castore.v1.DirectoryService",
                     "snix.store.v1.PathInfoService", "grpc.health.v1.Health"):
            if want not in names:
                fail(f"{version}: {want} not listed: {names}")
        expect(resps[0].valid_host, "h", "valid_host")
        fds = {}
        for r in resps[1:4]:
            for raw in r.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                fds[fd.name] = fd
        # Into the pool dependencies first, as it wants them.
        pool, added = descriptor_pool.DescriptorPool(), set()
        while len(added) < len(fds):
            ready = [n for n, fd in fds.items() if n not in added and set(fd.dependency) <= added]
            if not ready:
                fail(f"{version}: files whose dependencies were not sent: {set(fds) - added}")
            for n in ready:
                pool.Add(fds[n])
                added.add(n)
        blob = pool.FindServiceByName("snix.castore.v1.BlobService")
        expect(sorted(m.name for m in blob.methods), ["Put", "Read", "Stat"], "BlobService")
        pis = pool.FindServiceByName("snix.store.v1.PathInfoService")
        expect(sorted(m.name for m in pis.methods), ["CalculateNAR", "Get", "List", "Put"],
               "PathInfoService")
        expect(pool.FindMessageTypeByName("snix.castore.v1.Directory").fields_by_name["files"].number,
               2, "Directory.files")
        expect(resps[4].error_response.error_code, 5, "unknown symbol")


def nix32_decode(s):
    alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
    out = bytearray(len(s) * 5 // 8)
    for n, c in enumerate(reversed(s)):
        digit, b = alphabet.index(c), n * 5
        i, j = b // 8, b % 8
        out[i] |= (digit << j) & 0xff
        if i + 1 < len(out):
            out[i + 1] |= digit >> (8 - j)
    return bytes(out)


CHECKS = {n[len("check_"):].replace("_", "-"): f for n, f in globals().items() if n.startswith("check_")}


def main():
    target, check, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    pkgs = ["snix", "tvix"]
    if args and args[0] in PACKAGES:
        pkgs, args = [args[0]], args[1:]
    for pkg in pkgs:
        print(f"# {check} under {pkg}")
        CHECKS[check](Peer(target, pkg), args)


if __name__ == "__main__":
    main()
