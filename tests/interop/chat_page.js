#!/usr/bin/env node
// End to end in a real browser: headless Chromium opens the chat page of
// examples/chat over https:// in two tabs; each connects over wss://; tab 1 sends a
// message and tab 2 must show it. Takes a screenshot of tab 2.
//
// Usage: node tests/interop/chat_page.js URL CA_PEM SCREENSHOT_PNG
//
// The CA is trusted the way certs/README.md says for Chromium on Linux (an NSS
// database under $HOME/.pki/nssdb), in a temporary HOME so the real one is untouched.
// Needs Chromium (CHROMIUM=path, default /usr/bin/chromium), `certutil` (libnss3-tools)
// and the npm package playwright-core (NODE_PATH). Exit status 0 when the message
// arrived, 1 otherwise.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const TIMEOUT_MS = 20000;
const [url, ca, screenshot] = process.argv.slice(2);
if (!url || !ca || !screenshot) {
  console.error('usage: node chat_page.js URL CA_PEM SCREENSHOT_PNG');
  process.exit(2);
}

function homeTrusting(caFile) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tinywss-browser-home-'));
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'tinywss-dev', '-i', caFile]);
  return home;
}

async function openChat(context, name) {
  const page = await context.newPage();
  page.on('console', (msg) => console.log(`  [${name} console.${msg.type()}] ${msg.text()}`));
  await page.goto(url, { timeout: TIMEOUT_MS });
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, {
    timeout: TIMEOUT_MS,
  });
  console.log(`${name}: page loaded over https and connected over wss`);
  return page;
}

async function main() {
  const home = homeTrusting(ca);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tinywss-browser-profile-'));
  let context;
  let ok = false;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      env: { ...process.env, HOME: home },
      timeout: TIMEOUT_MS,
      // This machine has no network: keep Chromium from calling home.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
    });
    const sender = await openChat(context, 'tab 1');
    const receiver = await openChat(context, 'tab 2');
    const text = `hello from tab 1 at ${Date.now()}`;
    await sender.fill('#text', text);
    await sender.press('#text', 'Enter');
    await receiver.waitForFunction((t) => document.getElementById('log').textContent.includes(t), text, {
      timeout: TIMEOUT_MS,
    });
    const line = await receiver.evaluate(
      (t) => [...document.querySelectorAll('#log div')].map((d) => d.textContent).find((l) => l.includes(t)),
      text,
    );
    console.log(`tab 2 shows: ${line}`);
    ok = /^<guest-\d+> hello from tab 1/.test(line);
    await receiver.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);
  } catch (e) {
    console.log(`FAIL: ${e.message.split('\n')[0]}`);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
  process.exit(ok ? 0 : 1);
}

main();
