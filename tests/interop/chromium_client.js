#!/usr/bin/env node
// Interop check of a tinywss echo server with headless Chromium.
//
// Usage: node chromium_client.js URL CA_PEM [--deflate]
//        node chromium_client.js URL --system-trust   (no extra CA: expect a certificate error)
//
// The CA is trusted the way certs/README.md says for Chromium on Linux: `certutil` adds
// it to $HOME/.pki/nssdb. To leave the real home folder alone, the script makes a
// temporary HOME with its own NSS database and starts Chromium with it.
//
// A page served from a local http://127.0.0.1 server opens `new WebSocket(URL)` and
// checks: a text message and a 100 KiB binary message come back unchanged; close(1000,
// "bye") ends with a clean close event (code 1000, wasClean). Browsers cannot send pings
// from JavaScript. Chromium's own console messages (which name the net:: error on
// failure) are printed.
//
// Chromium always offers permessage-deflate. The page checks the server's answer as the
// browser saw it (`ws.extensions`, from the 101's Sec-WebSocket-Extensions): none from a
// server without compression, and with --deflate (a server started with `--deflate`)
// permessage-deflate; then its messages are compressible, so that both sides compress.
//
// Needs: Chromium (CHROMIUM=path, default /usr/bin/chromium), `certutil` (Debian package
// libnss3-tools) and the npm package `playwright-core` (next to this file or on
// NODE_PATH). Exits 0 when all checks pass, 1 on a failed check, 2 on usage errors.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const TIMEOUT_MS = 20000;

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node chromium_client.js URL (CA_PEM | --system-trust) [--deflate]');
  process.exit(2);
}

const [url, ca, flag] = process.argv.slice(2);
const deflate = flag === '--deflate';
if (!url || !ca || process.argv.length > 5 || (flag !== undefined && !deflate)) usage();
if (ca !== '--system-trust' && !fs.existsSync(ca)) usage(`no such CA file: ${ca}`);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath)) usage(`no Chromium at ${chromiumPath} (set CHROMIUM=...)`);

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  usage('the `playwright-core` package is missing: `npm install playwright-core` next to this script or set NODE_PATH');
}

// The page: runs the checks and reports in document.title as "DONE <json>".
const PAGE = `<!doctype html><meta charset="utf-8"><title>running</title><pre id="log"></pre>
<script>
const results = [];
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
function done(extra) { document.title = "DONE " + JSON.stringify({ results, ...extra }); }
function check(ok, what) { results.push({ ok, what }); log((ok ? "ok:   " : "FAIL: ") + what); }
const params = new URLSearchParams(location.search);
const url = params.get("url");
const deflate = params.get("deflate") === "1";
const text = "hello from chromium: ünïcødé ✓".repeat(deflate ? 60 : 1);
const blob = new Uint8Array(100 * 1024);
if (deflate) blob.forEach((_, i) => { blob[i] = i % 251; });
else for (let i = 0; i < blob.length; i += 65536) crypto.getRandomValues(blob.subarray(i, i + 65536));
let step = "connect";
let ws;
try { ws = new WebSocket(url); } catch (e) { check(false, "new WebSocket: " + e); done({}); }
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  check(true, "connected to " + url);
  if (deflate) {
    check(ws.extensions.startsWith("permessage-deflate"), "server accepted permessage-deflate (" + ws.extensions + ")");
  } else {
    check(ws.extensions === "", "no extension from a server without compression (got " + JSON.stringify(ws.extensions) + ")");
  }
  step = "text echo"; ws.send(text);
};
ws.onmessage = (e) => {
  if (step === "text echo") {
    check(e.data === text, "text echo (" + text.length + " chars)");
    step = "binary echo"; ws.send(blob);
  } else if (step === "binary echo") {
    const got = e.data instanceof ArrayBuffer ? new Uint8Array(e.data) : new Uint8Array();
    check(got.length === blob.length && got.every((b, i) => b === blob[i]),
          "binary echo (100 KiB, got " + got.length + " bytes)");
    step = "close"; ws.close(1000, "bye");
  } else {
    check(false, "unexpected message in step " + step);
  }
};
ws.onerror = () => { log("error event in step " + step); };
ws.onclose = (e) => {
  log("close event: code=" + e.code + " reason=" + JSON.stringify(e.reason) + " wasClean=" + e.wasClean);
  if (step !== "close") check(false, step + ": connection closed (code " + e.code + ")");
  else {
    check(e.code === 1000, "close code 1000 (got " + e.code + ")");
    check(e.wasClean, "clean close (wasClean)");
  }
  done({ code: e.code, reason: e.reason, wasClean: e.wasClean });
};
</script>`;

function makeHome() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-home-'));
  if (ca !== '--system-trust') {
    const db = path.join(home, '.pki', 'nssdb');
    fs.mkdirSync(db, { recursive: true });
    // certs/README.md's command needs the database to exist first.
    execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password'], { stdio: 'inherit' });
    execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'tinywss-dev', '-i', ca], { stdio: 'inherit' });
  }
  return home;
}

async function main() {
  const home = makeHome();
  const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pageUrl = `http://127.0.0.1:${server.address().port}/?url=${encodeURIComponent(url)}&deflate=${deflate ? 1 : 0}`;

  let context;
  let exitCode = 1;
  try {
    context = await chromium.launchPersistentContext(userData, {
      executablePath: chromiumPath,
      headless: true,
      env: { ...process.env, HOME: home },
      timeout: TIMEOUT_MS,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
    console.log(`chromium ${context.browser() ? context.browser().version() : '(persistent context)'}`);
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (msg) => console.log(`      [chromium console.${msg.type()}] ${msg.text()}`));
    await page.goto(pageUrl, { timeout: TIMEOUT_MS });
    await page.waitForFunction(() => document.title.startsWith('DONE '), null, { timeout: TIMEOUT_MS });
    const report = JSON.parse((await page.title()).slice(5));
    for (const r of report.results) console.log((r.ok ? 'ok:   ' : 'FAIL: ') + r.what);
    const failed = report.results.filter((r) => !r.ok).length;
    if (report.results.length === 0 || failed) {
      console.log(`${failed || 1} check(s) failed`);
    } else {
      console.log('all checks passed');
      exitCode = 0;
    }
  } catch (e) {
    console.log(`FAIL: ${e.message.split('\n')[0]}`);
  } finally {
    if (context) await context.close().catch(() => {});
    server.close();
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(userData, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

main();
