#!/usr/bin/env node
// Interop check of a tinywss echo server with the Node.js `ws` client.
//
// Usage: node node_client.js URL CA_PEM [--deflate]
//        node node_client.js URL --system-trust   (no extra CA: expect a certificate error)
//
// The CA is trusted the way certs/README.md says: NODE_EXTRA_CA_CERTS=CA_PEM. Node reads
// that variable only at start-up, so the script re-runs itself once with it set.
//
// Checks, against an echo server: a text message and a 100 KiB binary message come back
// unchanged; a ping is answered by a pong with the same payload; close(1000, "bye")
// completes the close handshake (the server's close frame arrives, code 1000) promptly.
//
// With --deflate the client uses perMessageDeflate: true, checks that the server accepted
// it (ws.extensions, from the 101's Sec-WebSocket-Extensions), and sends compressible
// messages, which ws compresses above its threshold (and the server compresses the echo).
//
// Needs the `ws` package: `npm install ws` next to this file, or NODE_PATH pointing at a
// node_modules folder that has it. Exits 0 when all checks pass, 1 on a failed check,
// 2 on usage errors.
'use strict';

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const TIMEOUT_MS = 20000; // for the whole run

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node node_client.js URL (CA_PEM | --system-trust)');
  process.exit(2);
}

const [url, ca, flag] = process.argv.slice(2);
const deflate = flag === '--deflate';
if (!url || !ca || process.argv.length > 5 || (flag !== undefined && !deflate)) usage();

if (ca !== '--system-trust') {
  const caPath = path.resolve(ca);
  if (!fs.existsSync(caPath)) usage(`no such CA file: ${ca}`);
  if (process.env.NODE_EXTRA_CA_CERTS !== caPath) {
    const child = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath },
      timeout: TIMEOUT_MS + 5000,
    });
    if (child.error) {
      console.error(`FAIL: could not run node again: ${child.error.message}`);
      process.exit(1);
    }
    process.exit(child.status === null ? 1 : child.status);
  }
} else if (process.env.NODE_EXTRA_CA_CERTS) {
  // Node read it at start-up; it cannot be undone from here.
  console.error(`note: NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} is set and stays in effect`);
}

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  usage('the `ws` package is missing: run `npm install ws` next to this script or set NODE_PATH');
}

const failures = [];
function check(ok, what) {
  console.log((ok ? 'ok:   ' : 'FAIL: ') + what);
  if (!ok) failures.push(what);
}
function finish() {
  if (failures.length) {
    console.log(`${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log('all checks passed');
  process.exit(0);
}

const overall = setTimeout(() => {
  check(false, `everything done within ${TIMEOUT_MS} ms`);
  finish();
}, TIMEOUT_MS);

const ws = new WebSocket(url, { perMessageDeflate: deflate, handshakeTimeout: 10000 });
const text = 'hello from node ws: ünïcødé ✓'.repeat(deflate ? 60 : 1);
const blob = deflate ? Buffer.alloc(100 * 1024, 'compressible ') : crypto.randomBytes(100 * 1024);
const pingPayload = Buffer.from('ping-payload');
let step = 'connect';
let closeStarted = 0;

ws.on('error', (err) => {
  console.log(`FAIL: ${step}: ${err.code ? err.code + ': ' : ''}${err.message}`);
  failures.push(step);
  clearTimeout(overall);
  finish();
});

ws.on('open', () => {
  console.log(`ok:   connected to ${url}`);
  // The server's Sec-WebSocket-Extensions answer, as ws kept it.
  const accepted = String(ws.extensions);
  if (deflate) {
    check(accepted.startsWith('permessage-deflate'), `server accepted permessage-deflate (${accepted})`);
  } else {
    check(accepted === '', `no extension without an offer (${accepted})`);
  }
  step = 'text echo';
  ws.send(text);
});

ws.on('message', (data, isBinary) => {
  if (step === 'text echo') {
    check(!isBinary && data.toString('utf8') === text, `text echo (${text.length} chars)`);
    step = 'binary echo';
    ws.send(blob);
  } else if (step === 'binary echo') {
    check(isBinary && Buffer.compare(data, blob) === 0, `binary echo (100 KiB, got ${data.length} bytes)`);
    step = 'ping';
    ws.ping(pingPayload);
  } else {
    check(false, `unexpected message in step ${step}`);
  }
});

ws.on('pong', (data) => {
  if (step !== 'ping') return;
  check(Buffer.compare(data, pingPayload) === 0, `ping answered by pong with the same payload`);
  step = 'close';
  closeStarted = Date.now();
  ws.close(1000, 'bye');
});

ws.on('close', (code, reason) => {
  const took = Date.now() - closeStarted;
  clearTimeout(overall);
  if (step !== 'close') {
    check(false, `connection closed early in step ${step}: code ${code}, reason ${JSON.stringify(reason.toString())}`);
    finish();
  }
  console.log(`      close event: code=${code} reason=${JSON.stringify(reason.toString())} after ${took} ms`);
  check(code === 1000, `close code 1000 from the server (got ${code}; 1005 = no code, 1006 = no close frame)`);
  check(['bye', ''].includes(reason.toString()), `close reason echoed or empty`);
  // ws waits up to 30 s for the server to end the TCP connection after the close frames.
  check(took < 5000, `close handshake and TCP close completed promptly (${took} ms)`);
  finish();
});
