// The baseline for bench/upload.bench.ts: a bare node:http server that streams each PUT body to
// a file and answers 200, nothing else. Usage: node bench/bare-put-server.mjs <port> <dir>
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const [port, dir] = process.argv.slice(2);
let n = 0;
createServer(async (req, res) => {
  if (req.method !== 'PUT') return res.writeHead(200).end('ok');
  try {
    await pipeline(req, createWriteStream(join(dir, `${process.pid}-${n++}.part`)));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  } catch {
    res.writeHead(500).end();
  }
}).listen(Number(port), '127.0.0.1', () => console.log('ready'));
