// grpc_peer.js - the Node gRPC peer of the daemon tests (issue 15):
// @grpc/grpc-js (its own HTTP/2, pure JavaScript) with messages from
// proto/ by @grpc/proto-loader, plus raw HTTP/2 (node:http2) for input no
// gRPC library would send.
//
//   node grpc_peer.js TARGET CHECK [ARGS...]
//
// TARGET is 127.0.0.1:PORT or unix:/path. Every check runs under both
// package names; a failure exits non-zero naming what differed.
'use strict';
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');
const net = require('net');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const def = loader.loadSync(['castore.proto', 'pathinfo.proto', 'rpc_blobstore.proto',
  'rpc_directory.proto', 'rpc_pathinfo.proto', 'health.proto'],
{includeDirs: [path.join(ROOT, 'proto')], keepCase: true, longs: Number, enums: String,
  bytes: Buffer, defaults: true, oneofs: true});
const S = grpc.status;
const EMPTY = Buffer.from('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262', 'hex');

function fail(msg) {
  throw new Error(msg);
}
function expect(got, want, what) {
  const g = JSON.stringify(got); const w = JSON.stringify(want);
  if (g !== w) fail(`${what}: got ${g}, expected ${w}`);
}
// Encoders by message name, from the loaded definitions.
function codec(name) {
  for (const v of Object.values(def)) {
    if (typeof v !== 'object' || v.format) continue;
    for (const m of Object.values(v)) {
      if (m.requestType && m.requestType.type.name === name)
        return {ser: m.requestSerialize, de: m.requestDeserialize};
      if (m.responseType && m.responseType.type.name === name)
        return {ser: m.responseSerialize, de: m.responseDeserialize};
    }
  }
  fail(`no codec for ${name}`);
}
const raw = {ser: (b) => b, de: (b) => b};

class Peer {
  constructor(target, pkg) {
    this.client = new grpc.Client(target, grpc.credentials.createInsecure());
    this.cas = `${pkg}.castore.v1`;
    this.store = `${pkg}.store.v1`;
  }
  path(svc, m) {
    return `/${svc === 'PathInfoService' ? this.store : this.cas}.${svc}/${m}`;
  }
  opts(o) {
    return o && o.timeout ? {deadline: Date.now() + o.timeout} : {};
  }
  unary(svc, m, req, reqC, respC, o) {
    return new Promise((res, rej) => this.client.makeUnaryRequest(this.path(svc, m), reqC.ser,
        respC.de, req, new grpc.Metadata(), this.opts(o), (e, r) => e ? rej(e) : res(r)));
  }
  sstream(svc, m, req, reqC, respC, o) {
    const call = this.client.makeServerStreamRequest(this.path(svc, m), reqC.ser, respC.de, req,
        new grpc.Metadata(), this.opts(o));
    const out = [];
    const done = new Promise((res, rej) => {
      call.on('data', (d) => out.push(d));
      call.on('error', rej);
      call.on('end', () => res(out));
    });
    done.call = call;
    return done;
  }
  cstream(svc, m, msgs, reqC, respC, o) {
    let call;
    const p = new Promise((res, rej) => {
      call = this.client.makeClientStreamRequest(this.path(svc, m), reqC.ser, respC.de,
          new grpc.Metadata(), this.opts(o), (e, r) => e ? rej(e) : res(r));
    });
    p.call = call;
    if (msgs) {
      for (const x of msgs) call.write(x);
      call.end();
    }
    return p;
  }
  stat(d) {
    return this.unary('BlobService', 'Stat', {digest: d}, codec('StatBlobRequest'),
        codec('StatBlobResponse'));
  }
  async read(d, o) {
    const r = await this.sstream('BlobService', 'Read', {digest: d}, codec('ReadBlobRequest'),
        codec('BlobChunk'), o);
    return r.map((c) => c.data);
  }
  async put(chunks, o) {
    const r = await this.cstream('BlobService', 'Put', chunks.map((c) => ({data: c})),
        codec('BlobChunk'), codec('PutBlobResponse'), o);
    return r.digest;
  }
  dirGet(d, recursive) {
    return this.sstream('DirectoryService', 'Get', {digest: d, recursive},
        codec('GetDirectoryRequest'), raw);
  }
  async dirPut(encodings) {
    const r = await this.cstream('DirectoryService', 'Put', encodings, raw,
        codec('PutDirectoryResponse'));
    return r.root_digest;
  }
  piGet(d) {
    return this.unary('PathInfoService', 'Get', {by_output_hash: d},
        codec('GetPathInfoRequest'), raw);
  }
  piPut(enc) {
    return this.unary('PathInfoService', 'Put', enc, raw, raw);
  }
  calc(enc) {
    return this.unary('PathInfoService', 'CalculateNAR', enc, raw,
        codec('CalculateNARResponse'));
  }
  list() {
    return this.sstream('PathInfoService', 'List', {}, codec('ListPathInfoRequest'), raw);
  }
  health(service) {
    return new Promise((res, rej) => this.client.makeUnaryRequest('/grpc.health.v1.Health/Check',
        codec('HealthCheckRequest').ser, codec('HealthCheckResponse').de, {service},
        new grpc.Metadata(), {deadline: Date.now() + 10000}, (e, r) => e ? rej(e) : res(r)));
  }
}

async function status(p) {
  try {
    await p;
    return S.OK;
  } catch (e) {
    if (e.code === undefined) throw e;
    return e.code;
  }
}
async function expectStatus(want, p, what) {
  const got = await status(p);
  if (got !== want) fail(`${what}: status ${got}, expected ${want}`);
}
async function alive(p) {
  expect((await p.health('')).status, 'SERVING', 'health');
}
function vectors() {
  return JSON.parse(fs.readFileSync(process.env.VECTORS));
}
function blake3(buf) {
  const r = require('child_process').execFileSync('b3sum', ['--no-names'], {input: buf});
  return Buffer.from(r.toString().trim(), 'hex');
}

const checks = {
  async 'health'(p) {
    expect((await p.health('')).status, 'SERVING', 'overall');
    expect((await p.health(`${p.cas}.BlobService`)).status, 'SERVING', 'BlobService');
    expect((await p.health(`${p.store}.PathInfoService`)).status, 'SERVING', 'PathInfo');
    await expectStatus(S.NOT_FOUND, p.health('no.such.Service'), 'unknown service');
  },
  async 'blobs'(p) {
    for (const b of vectors().blobs) {
      const data = b.content_hex !== undefined ? Buffer.from(b.content_hex, 'hex') :
        Buffer.from(Array.from({length: 255 * 4096}, (_, i) => i % 255));
      const parts = [];
      for (let i = 0; i < data.length; i += 65536) parts.push(data.subarray(i, i + 65536));
      expect((await p.put(parts)).toString('hex'), b.blake3_hex, `${b.name} Put`);
      const got = Buffer.concat(await p.read(Buffer.from(b.blake3_hex, 'hex')));
      expect(got.equals(data), true, `${b.name} Read`);
      expect((await p.stat(Buffer.from(b.blake3_hex, 'hex'))).chunks, [], `${b.name} Stat`);
    }
  },
  async 'errors'(p) {
    await expectStatus(S.INVALID_ARGUMENT, p.stat(Buffer.alloc(31)), 'Stat, 31 bytes');
    await expectStatus(S.INVALID_ARGUMENT, p.read(Buffer.alloc(33)), 'Read, 33 bytes');
    const missing = Buffer.concat([Buffer.from([0x10]), Buffer.alloc(31)]);
    await expectStatus(S.NOT_FOUND, p.stat(missing), 'Stat of a missing blob');
    await expectStatus(S.NOT_FOUND, p.read(missing), 'Read of a missing blob');
    await expectStatus(S.NOT_FOUND, p.dirGet(missing, false), 'Get of a missing Directory');
    expect(await p.dirGet(missing, true), [], 'recursive Get of a missing Directory');
    await expectStatus(S.NOT_FOUND, p.piGet(Buffer.alloc(20, 1)), 'Get of a missing path');
    await expectStatus(S.INVALID_ARGUMENT, p.piGet(Buffer.alloc(19)), 'Get, 19 bytes');
    // A Directory with a '/' in a name, as a snix client would encode it.
    const bad = Buffer.concat([Buffer.from('12270a03612f621220', 'hex'), EMPTY]);
    await expectStatus(S.INVALID_ARGUMENT, p.dirPut([bad]), "a name with '/'");
    await alive(p);
  },
  async 'empty-blob'(p) {
    expect((await p.put([])).toString('hex'), EMPTY.toString('hex'), 'Put of nothing');
    expect(await p.read(EMPTY), [], 'Read of the empty blob');
  },
  async 'large-blob'(p, mib) {
    const data = crypto.randomBytes(Number(mib) << 20);
    const parts = [];
    for (let i = 0; i < data.length; i += 1 << 20) parts.push(data.subarray(i, i + (1 << 20)));
    const d = await p.put(parts);
    expect(d.toString('hex'), blake3(data).toString('hex'), 'Put digest');
    const chunks = await p.read(d);
    expect(Buffer.concat(chunks).equals(data), true, 'Read back');
    if (chunks.length < 2) fail(`one message for ${data.length} bytes`);
  },
  async 'deadline'(p) {
    const data = crypto.randomBytes(4 << 20);
    const d = await p.put([data]);
    await expectStatus(S.DEADLINE_EXCEEDED, p.read(d, {timeout: 1}), 'Read with 1 ms');
    const data2 = crypto.randomBytes(1 << 16);
    const put = p.cstream('BlobService', 'Put', null, codec('BlobChunk'),
        codec('PutBlobResponse'), {timeout: 300});
    put.call.write({data: data2.subarray(0, 100)});
    await expectStatus(S.DEADLINE_EXCEEDED, put, 'Put that stalls');
    await new Promise((r) => setTimeout(r, 300));
    await expectStatus(S.NOT_FOUND, p.stat(blake3(data2)), 'the stalled Put stored nothing');
    await alive(p);
  },
  async 'cancel'(p) {
    const data = crypto.randomBytes(8 << 20);
    const d = await p.put([data]);
    const r = p.sstream('BlobService', 'Read', {digest: d}, codec('ReadBlobRequest'),
        codec('BlobChunk'));
    r.call.once('data', () => r.call.cancel());
    await expectStatus(S.CANCELLED, r, 'cancelled Read');
    const data2 = crypto.randomBytes(1 << 16);
    const put = p.cstream('BlobService', 'Put', null, codec('BlobChunk'),
        codec('PutBlobResponse'));
    put.call.write({data: data2.subarray(0, 100)});
    await new Promise((res) => setTimeout(res, 200));
    put.call.cancel();
    await expectStatus(S.CANCELLED, put, 'cancelled Put');
    await new Promise((res) => setTimeout(res, 300));
    await expectStatus(S.NOT_FOUND, p.stat(blake3(data2)), 'the cancelled Put stored nothing');
    await alive(p);
  },
  async 'vectors'(p, set) {
    const v = vectors();
    const dirs = v.directories[set];
    const by = Object.fromEntries(dirs.map((d) => [d.blake3_hex, Buffer.from(d.encoding_hex, 'hex')]));
    for (const d of dirs) {
      // The closure, leaves first, from the vector's own references.
      const order = [];
      const seen = new Set();
      const visit = (h) => {
        if (seen.has(h)) return;
        seen.add(h);
        for (const c of children(by[h])) visit(c);
        order.push(by[h]);
      };
      visit(d.blake3_hex);
      expect((await p.dirPut(order)).toString('hex'), d.blake3_hex, `${d.name} Put`);
      const got = await p.dirGet(Buffer.from(d.blake3_hex, 'hex'), false);
      expect(got.map((b) => b.toString('hex')), [d.encoding_hex], `${d.name} Get`);
      const rec = await p.dirGet(Buffer.from(d.blake3_hex, 'hex'), true);
      expect(rec[0].toString('hex'), d.encoding_hex, `${d.name} recursive Get root first`);
      expect(rec.length, order.length, `${d.name} recursive Get count`);
    }
    const pv = v.pathinfo[0];
    const enc = Buffer.from(pv.encoding_hex, 'hex');
    expect((await p.piPut(enc)).toString('hex'), pv.encoding_hex, 'PathInfo Put answer');
    expect((await p.piGet(Buffer.alloc(20))).toString('hex'), pv.encoding_hex, 'PathInfo Get');
    const listed = (await p.list()).map((b) => b.toString('hex'));
    if (!listed.includes(pv.encoding_hex)) fail('List lacks the vector PathInfo');
    const sym = v.entries.find((e) => e.node.startsWith('symlink'));
    const nar = v.nar.find((n) => n.name === 'NAR_CONTENTS_SYMLINK');
    const r = await p.calc(Buffer.from(sym.encoding_hex, 'hex'));
    expect(r.nar_sha256.toString('hex'), nar.sha256_hex, 'CalculateNAR');
  },
  // Raw HTTP/2, for what no gRPC library sends: length prefixes of 4 GiB,
  // truncated frames, bytes that are not protobuf. Each ends in a clean
  // status (or, for a flood, the stream reset once the daemon's memory
  // quota is reached), and the daemon lives on.
  async 'raw'(p, target) {
    const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x20]);
    const junk = Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);
    expect(await rawCall(target, p.path('BlobService', 'Stat'), huge), S.INVALID_ARGUMENT,
        'Stat with a 4 GiB length prefix');
    expect(await rawCall(target, p.path('PathInfoService', 'Put'), junk), S.INVALID_ARGUMENT,
        'malformed PathInfo');
    expect(await rawCall(target, p.path('BlobService', 'Stat'), junk), S.INVALID_ARGUMENT,
        'malformed StatBlobRequest');
    expect(await rawCall(target, p.path('DirectoryService', 'Put'), junk), S.INVALID_ARGUMENT,
        'malformed Directory');
    expect(await rawCall(target, p.path('BlobService', 'Stat'), Buffer.from([0, 0, 0])),
        S.INVALID_ARGUMENT, 'a frame cut inside its prefix');
    await alive(p);
  },
  async 'flood'(p, target, mib) {
    const sent = await rawFlood(target, p.path('BlobService', 'Put'), Number(mib));
    if (sent >= Number(mib)) fail(`the daemon took all of ${sent} MiB of one 4 GiB message`);
    console.log(`reset after ${sent} MiB`);
    await alive(p);
  },
};

function rawSession(target) {
  const opts = target.startsWith('unix:') ?
    {createConnection: () => net.connect(target.slice(5))} : {};
  return http2.connect(target.startsWith('unix:') ? 'http://localhost' : `http://${target}`, opts);
}

function rawRequest(s, pathName) {
  return s.request({':method': 'POST', ':path': pathName, 'content-type': 'application/grpc',
    'te': 'trailers'});
}

// One request with `body` as its DATA; the grpc-status it ends with.
function rawCall(target, pathName, body) {
  return new Promise((res, rej) => {
    const s = rawSession(target);
    s.on('error', rej);
    const req = rawRequest(s, pathName);
    let st = null;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) st = Number(h['grpc-status']);
    });
    req.on('trailers', (h) => {
      st = Number(h['grpc-status']);
    });
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => {
      s.close();
      res(st);
    });
    req.end(body);
  });
}

// A 4 GiB length prefix, then up to `mib` MiB of it: how many MiB went
// before the daemon reset the stream.
function rawFlood(target, pathName, mib) {
  return new Promise((res, rej) => {
    const s = rawSession(target);
    s.on('error', () => {});
    const req = rawRequest(s, pathName);
    const chunk = Buffer.alloc(1 << 20);
    let sent = 0;
    const timer = setTimeout(() => rej(new Error(`no reset after ${sent} MiB`)), 60000);
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      s.destroy();
      res(sent);
    });
    req.write(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]));
    const more = () => {
      while (sent < mib && !req.destroyed) {
        sent++;
        if (!req.write(chunk)) return req.once('drain', more);
      }
    };
    more();
  });
}

// The digests of a Directory's child directories (field 1, then its field
// 2), read from the bytes: enough of protobuf for the vectors.
function children(buf) {
  const out = [];
  const varint = (b, i) => {
    let v = 0; let s = 0;
    for (;;) {
      const x = b[i++];
      v += (x & 0x7f) * 2 ** s;
      s += 7;
      if (!(x & 0x80)) return [v, i];
    }
  };
  let i = 0;
  while (i < buf.length) {
    let tag; let len;
    [tag, i] = varint(buf, i);
    if ((tag & 7) === 0) {
      [, i] = varint(buf, i);
      continue;
    }
    [len, i] = varint(buf, i);
    if (tag >> 3 === 1) {
      const e = buf.subarray(i, i + len);
      let j = 0;
      while (j < e.length) {
        let t; let l;
        [t, j] = varint(e, j);
        if ((t & 7) === 0) {
          [, j] = varint(e, j);
          continue;
        }
        [l, j] = varint(e, j);
        if (t >> 3 === 2) out.push(e.subarray(j, j + l).toString('hex'));
        j += l;
      }
    }
    i += len;
  }
  return out;
}

async function main() {
  const [target, check, ...args] = process.argv.slice(2);
  for (const pkg of ['snix', 'tvix']) {
    console.log(`# ${check} under ${pkg}`);
    const p = new Peer(target, pkg);
    await checks[check](p, ...(['raw', 'flood'].includes(check) ? [target, ...args] : args));
    p.client.close();
  }
}
main().then(() => process.exit(0), (e) => {
  console.error(`grpc_peer.js: ${e.message}`);
  process.exit(1);
});
