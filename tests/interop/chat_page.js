#!/usr/bin/env node
// End to end in a real browser: headless Chromium uses the chat page of examples/chat
// as people would, in two desktop tabs and one phone-sized tab, and this script
// checks what each tab shows:
//
//   - the page loads over https:// and connects over wss://; guests are numbered from 1;
//   - a message typed in one tab appears in the other;
//   - /nick renames (the others are told), a taken name or one with spaces is refused;
//     bare /nick, bare /join and an unknown /command get their usage, in the sender's
//     tab only, and nobody sees them as chat;
//   - /join moves a tab to another room; the member list and the room list follow;
//   - a long unbroken word wraps inside a 390 px wide page;
//   - after the server restarts, every tab reconnects by itself with its nickname and
//     room, and the status line says what happened in words.
//
// The script starts the server itself (it must stop and restart it), from the binary,
// certificate and key given, on a free port of 127.0.0.1, and leaves in OUT_DIR: the
// server's log (chat-server.log) and screenshots at desktop and phone widths
// (chat-desktop.png, chat-phone.png, chat-offline.png while the server is down,
// chat-reconnected.png).
//
// Usage: node tests/interop/chat_page.js CHAT_BINARY CERT_PEM KEY_PEM CA_PEM OUT_DIR
//
// The CA is trusted the way certs/README.md says for Chromium on Linux (an NSS
// database under $HOME/.pki/nssdb), in a temporary HOME so the real one is untouched.
// Needs Chromium (CHROMIUM=path, default /usr/bin/chromium), `certutil` (libnss3-tools)
// and the npm package playwright-core (NODE_PATH). Prints "N passed, M failed"; exit
// status 0 when every check passed.
'use strict';

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const TIMEOUT_MS = 20000;
const DESKTOP = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
const [serverBin, cert, key, ca, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node chat_page.js CHAT_BINARY CERT_PEM KEY_PEM CA_PEM OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? ' ok ' : 'FAIL'} ${what}${ok || detail === undefined ? '' : `: ${detail}`}`);
  return ok;
}

// ---- the server: started, stopped and started again on the same port

const serverLog = path.join(outDir, 'chat-server.log');
let server = null;

function startServer(port) {
  return new Promise((resolve, reject) => {
    fs.appendFileSync(serverLog, `---- started with --bind 127.0.0.1:${port}\n`);
    const log = fs.openSync(serverLog, 'a');
    const child = spawn(serverBin, ['--bind', `127.0.0.1:${port}`, '--cert', cert, '--key', key], {
      stdio: ['ignore', log, log],
      env: { ...process.env, RUST_LOG: 'info' },
    });
    fs.closeSync(log);
    const deadline = Date.now() + TIMEOUT_MS;
    const poll = () => {
      const found = fs.readFileSync(serverLog, 'utf8').match(/listening on 127\.0\.0\.1:(\d+)/g);
      const last = found && found[found.length - 1].split(':').pop();
      if (last && (port === 0 || Number(last) === port) && child.exitCode === null) {
        server = child;
        return resolve(Number(last));
      }
      if (child.exitCode !== null || Date.now() > deadline) return reject(new Error('the chat server did not start'));
      setTimeout(poll, 50);
    };
    setTimeout(poll, 50);
  });
}

function stopServer() {
  return new Promise((resolve) => {
    if (!server || server.exitCode !== null) return resolve(null);
    server.once('exit', (code) => resolve(code));
    server.kill('SIGTERM');
  });
}

// ---- the browser

function homeTrusting(caFile) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tinywss-browser-home-'));
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'tinywss-dev', '-i', caFile]);
  return home;
}

async function openChat(context, url, name, viewport) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on('console', (msg) => console.log(`  [${name} console.${msg.type()}] ${msg.text()}`));
  await page.goto(url, { timeout: TIMEOUT_MS });
  await connected(page);
  return page;
}

function connected(page) {
  return page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, {
    timeout: TIMEOUT_MS,
  });
}

/// What a tab shows: its name and room, the member and room lists, the log's lines.
function view(page) {
  return page.evaluate(() => {
    const text = (id) => (document.getElementById(id) || {}).textContent || '';
    const all = (selector) => [...document.querySelectorAll(selector)];
    return {
      nick: text('nick'),
      room: text('room'),
      status: text('status'),
      members: all('#members [data-nick]').map((e) => e.dataset.nick).sort(),
      rooms: all('#rooms [data-room]').map((e) => e.dataset.room).sort(),
      lines: all('#log div').map((e) => e.textContent),
    };
  });
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/// Waits until `predicate(view)` holds in `page`; returns the last view either way.
async function until(page, predicate) {
  const deadline = Date.now() + 5000;
  let seen = await view(page);
  while (!predicate(seen) && Date.now() < deadline) {
    await page.waitForTimeout(50);
    seen = await view(page);
  }
  return seen;
}

const has = (needle) => (v) => v.lines.some((l) => l.includes(needle));

/// The page wider than the window means a line ran off the right edge.
function overflow(page) {
  return page.evaluate(() => {
    const log = document.getElementById('log');
    return {
      page: document.documentElement.scrollWidth - window.innerWidth,
      log: log ? log.scrollWidth - log.clientWidth : 0,
    };
  });
}

async function scenario(context, url, port) {
  const a = await openChat(context, url, 'tab A', DESKTOP);
  const b = await openChat(context, url, 'tab B', DESKTOP);
  let va = await until(a, (v) => v.nick !== '');
  let vb = await until(b, (v) => v.nick !== '');
  check('guests are numbered from 1', va.nick === 'guest-1' && vb.nick === 'guest-2', `${va.nick}, ${vb.nick}`);

  const hello = `hello from tab A at ${Date.now()}`;
  await say(a, hello);
  vb = await until(b, has(hello));
  check('a message reaches the other tab', vb.lines.some((l) => /^<guest-1> hello from tab A/.test(l)), vb.lines.at(-1));

  await say(a, '/nick alice');
  vb = await until(b, has('is now alice'));
  va = await until(a, (v) => v.nick === 'alice');
  check('/nick renames, and the room is told', va.nick === 'alice' && has('guest-1 is now alice')(vb), vb.lines.at(-1));
  vb = await until(b, (v) => v.members.includes('alice'));
  check('the member list shows the new name', vb.members.join() === 'alice,guest-2', vb.members.join());

  const refusals = [
    [b, '/nick alice', 'taken'],
    [b, '/nick two words', '"two words" cannot be a name'],
    [b, '/nick', 'usage: /nick'],
    [a, '/join', 'usage: /join'],
    [a, '/frobnicate now', 'unknown command /frobnicate'],
  ];
  for (const [page, command, answer] of refusals) {
    await say(page, command);
    const sender = await until(page, has(answer));
    check(`${command} is answered in the sender's tab`, has(answer)(sender), sender.lines.at(-1));
  }
  await say(b, '/nick bob');
  va = await until(a, has('guest-2 is now bob'));
  vb = await view(b);
  const leaked = (v, mine) => refusals.filter(([page]) => page !== mine).some(([, , answer]) => has(answer)(v));
  check('usage and refusals stay in the sender\'s tab', !leaked(va, a) && !leaked(vb, b), va.lines.join(' | '));
  check('commands are never said as chat', !va.lines.concat(vb.lines).some((l) => /^<[^>]+> \//.test(l)));

  await say(a, '/join games');
  va = await until(a, (v) => v.room === '#games' && v.members.join() === 'alice');
  vb = await until(b, (v) => v.members.join() === 'bob' && v.rooms.includes('games'));
  check('/join moves a tab to the room', va.room === '#games' && has('left #lobby')(vb), `${va.room}; ${vb.lines.at(-1)}`);
  check('member lists follow', va.members.join() === 'alice' && vb.members.join() === 'bob', `${va.members} / ${vb.members}`);
  check('room lists show both rooms', va.rooms.join() === 'games,lobby' && vb.rooms.join() === 'games,lobby',
        `${va.rooms} / ${vb.rooms}`);

  const phone = await openChat(context, url, 'phone', PHONE);
  await say(phone, '/join games');
  await say(phone, `a long word: ${'supercalifragilisticexpialidocious'.repeat(6)}`);
  const vp = await until(phone, (v) => v.room === '#games' && has('supercali')(v));
  va = await until(a, has('supercali'));
  const spill = await overflow(phone);
  check('a long word wraps at 390 px', spill.page <= 0 && spill.log <= 0, JSON.stringify(spill));
  check('the phone tab is in #games with alice', vp.members.includes('alice') && va.members.length === 2,
        `${vp.members} / ${va.members}`);

  await a.screenshot({ path: path.join(outDir, 'chat-desktop.png') });
  await phone.screenshot({ path: path.join(outDir, 'chat-phone.png') });

  const code = await stopServer();
  check('the server stops cleanly on SIGTERM', code === 0, `exit status ${code}`);
  va = await until(a, (v) => v.status !== 'connected');
  check('the status says in words that the connection is gone', /server|connection/i.test(va.status) &&
        !/\(\d{4}\)/.test(va.status), va.status);
  await until(phone, (v) => v.status !== 'connected');
  await phone.screenshot({ path: path.join(outDir, 'chat-offline.png') });
  await startServer(port);
  await Promise.all([a, b, phone].map(connected));
  va = await until(a, (v) => v.members.length === 2);
  vb = await until(b, (v) => v.members.length === 1);
  check('after a restart each tab keeps its name and room',
        va.nick === 'alice' && va.room === '#games' && vb.nick === 'bob' && vb.room === '#lobby',
        `${va.nick} ${va.room}, ${vb.nick} ${vb.room}`);
  check('and sees its room again', va.members.includes('alice') && vb.members.join() === 'bob',
        `${va.members} / ${vb.members}`);
  await say(b, 'still here');
  vb = await until(b, has('<bob> still here'));
  va = await view(a);
  check('messages flow after the restart, in their room only', has('<bob> still here')(vb) &&
        !has('<bob> still here')(va), vb.lines.at(-1));
  await phone.screenshot({ path: path.join(outDir, 'chat-reconnected.png') });
}

async function main() {
  const home = homeTrusting(ca);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tinywss-browser-profile-'));
  fs.writeFileSync(serverLog, '');
  let context;
  try {
    const port = await startServer(0);
    const url = `https://localhost:${port}/`;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      env: { ...process.env, HOME: home },
      timeout: TIMEOUT_MS,
      // This machine has no network: keep Chromium from calling home.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
    await scenario(context, url, port);
    console.log(`screenshots: ${outDir}/chat-{desktop,phone,offline,reconnected}.png`);
  } catch (e) {
    check('the scenario ran to its end', false, e.message.split('\n')[0]);
  } finally {
    if (context) await context.close().catch(() => {});
    await stopServer();
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
