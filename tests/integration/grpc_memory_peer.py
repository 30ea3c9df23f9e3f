"""grpc_memory_peer.py - a small in-memory BlobService, DirectoryService and
PathInfoService server on Python's grpcio (Debian python3-grpcio), the independent peer that
the gRPC client stores of storefs are tested against (t62-grpc-client).

    grpc_memory_peer.py GENDIR EXPORTDIR LISTEN PORTFILE [--mode MODE] [--chunk N]
                 [--delay SECONDS]

GENDIR holds the Python modules grpc_tools made from proto/ (lib.sh's
grpc_py_gen); EXPORTDIR the objects tests/tools/store_export wrote (paths/,
dirs/, blobs/). LISTEN is "127.0.0.1:0", "127.0.0.1:PORT" or "unix:/path";
the bound port is written to PORTFILE once the server serves. Every service
is served under the snix and the tvix package names (castore.md §1.7).

Modes (faults):
    honest  answer truthfully
    flip    every blob is sent with one byte flipped (its middle one)
    hang    never answer any call (until killed)
    extra   a recursive Directory Get sends one Directory nothing refers to
    lie     a blob Put is answered with the digest of other bytes
The blob stream is cut into messages of --chunk bytes (default 4096, as
snix does), with --delay seconds between them.

Puts are kept in memory too: blobs and Directories under the BLAKE3 of their
bytes (b3sum computes it: Python has no BLAKE3), PathInfos under their store
path's digest. A test peer: it checks no closure.
"""
import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc


def load(dirpath):
    out = {}
    for name in os.listdir(dirpath):
        with open(os.path.join(dirpath, name), "rb") as f:
            out[bytes.fromhex(name)] = f.read()
    return out


NIXBASE32 = "0123456789abcdfghijklmnpqrsvwxyz"


def nixbase32_decode(text):
    """The bytes of a Nix base-32 string (the hash part of a store path)."""
    n = len(text) * 5 // 8
    out = bytearray(n)
    for i, ch in enumerate(reversed(text)):
        digit = NIXBASE32.index(ch)
        b, j = i * 5 // 8, i * 5 % 8
        out[b] |= (digit << j) & 0xFF
        if b + 1 < n:
            out[b + 1] |= digit >> (8 - j)
        elif digit >> (8 - j):
            raise ValueError("nixbase32: bits past the end")
    return bytes(out)


def blake3(data):
    out = subprocess.run(["b3sum", "--no-names"], input=data, capture_output=True, check=True)
    return bytes.fromhex(out.stdout.decode().strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gendir")
    ap.add_argument("export")
    ap.add_argument("listen")
    ap.add_argument("portfile")
    ap.add_argument("--mode", default="honest", choices=["honest", "flip", "hang", "extra", "lie"])
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    sys.path.insert(0, a.gendir)
    import castore_pb2
    import rpc_blobstore_pb2 as blob_pb
    import rpc_directory_pb2 as dir_pb
    import rpc_pathinfo_pb2 as path_pb

    paths = load(os.path.join(a.export, "paths"))
    dirs = load(os.path.join(a.export, "dirs"))
    blobs = load(os.path.join(a.export, "blobs"))
    forever = threading.Event()

    def hang(context):
        if a.mode == "hang":
            forever.wait()

    def stat(req, context):
        hang(context)
        r = blob_pb.StatBlobRequest.FromString(req)
        if r.digest not in blobs:
            context.abort(grpc.StatusCode.NOT_FOUND, "blob not found")
        return blob_pb.StatBlobResponse().SerializeToString()

    def read(req, context):
        hang(context)
        r = blob_pb.ReadBlobRequest.FromString(req)
        data = blobs.get(r.digest)
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "blob not found")
        if a.mode == "flip" and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0x01]) + data[mid + 1:]
        for off in range(0, len(data), a.chunk):
            if a.delay and off:
                time.sleep(a.delay)
            yield blob_pb.BlobChunk(data=data[off:off + a.chunk]).SerializeToString()

    def dir_get(req, context):
        hang(context)
        r = dir_pb.GetDirectoryRequest.FromString(req)
        if r.WhichOneof("by_what") != "digest" or len(r.digest) != 32:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad digest")
        if not r.recursive:
            if r.digest not in dirs:
                context.abort(grpc.StatusCode.NOT_FOUND, "directory not found")
            yield dirs[r.digest]
            return
        # Breadth first, each Directory once (castore.md §1.3); an unknown
        # root is an empty stream.
        queue, seen = [r.digest], {r.digest}
        while queue:
            dg = queue.pop(0)
            if dg not in dirs:
                return
            yield dirs[dg]
            for child in castore_pb2.Directory.FromString(dirs[dg]).directories:
                if child.digest not in seen:
                    seen.add(child.digest)
                    queue.append(child.digest)
        if a.mode == "extra":
            yield castore_pb2.Directory(symlinks=[castore_pb2.SymlinkEntry(
                name=b"stray", target=b"nowhere")]).SerializeToString()

    def path_get(req, context):
        hang(context)
        r = path_pb.GetPathInfoRequest.FromString(req)
        if r.WhichOneof("by_what") != "by_output_hash":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "by_what not set")
        if len(r.by_output_hash) != 20:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "digest must be 20 bytes")
        if r.by_output_hash not in paths:
            context.abort(grpc.StatusCode.NOT_FOUND, "path not found")
        return paths[r.by_output_hash]

    def blob_put(chunks, context):
        data = b"".join(blob_pb.BlobChunk.FromString(c).data for c in chunks)
        digest = blake3(data + b"lie" if a.mode == "lie" else data)
        blobs[digest] = data
        return blob_pb.PutBlobResponse(digest=digest).SerializeToString()

    def dir_put(stream, context):
        last = None
        for raw in stream:
            castore_pb2.Directory.FromString(raw)  # must decode
            last = blake3(raw)
            dirs[last] = raw
        if last is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no Directory sent")
        return dir_pb.PutDirectoryResponse(root_digest=last).SerializeToString()

    def path_put(req, context):
        import pathinfo_pb2
        pi = pathinfo_pb2.PathInfo.FromString(req)
        entry = pi.entry.WhichOneof("entry")
        if entry is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no root entry")
        name = getattr(pi.entry, entry).name.decode()
        paths[nixbase32_decode(name[:32])] = req
        return req

    def path_list(req, context):
        hang(context)
        for k in sorted(paths):
            yield paths[k]

    handlers = []
    for pkg in ("snix", "tvix"):
        handlers.append(grpc.method_handlers_generic_handler(pkg + ".castore.v1.BlobService", {
            "Stat": grpc.unary_unary_rpc_method_handler(stat),
            "Read": grpc.unary_stream_rpc_method_handler(read),
            "Put": grpc.stream_unary_rpc_method_handler(blob_put),
        }))
        handlers.append(grpc.method_handlers_generic_handler(
            pkg + ".castore.v1.DirectoryService",
            {"Get": grpc.unary_stream_rpc_method_handler(dir_get),
             "Put": grpc.stream_unary_rpc_method_handler(dir_put)}))
        handlers.append(grpc.method_handlers_generic_handler(pkg + ".store.v1.PathInfoService", {
            "Get": grpc.unary_unary_rpc_method_handler(path_get),
            "List": grpc.unary_stream_rpc_method_handler(path_list),
            "Put": grpc.unary_unary_rpc_method_handler(path_put),
        }))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=handlers)
    port = server.add_insecure_port(a.listen)
    if not port:
        sys.exit("grpc_memory_peer: cannot listen on " + a.listen)
    server.start()
    with open(a.portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(a.portfile + ".tmp", a.portfile)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
