// An echo server on Node's https module and the `ws` package: what a Node.js user would
// run. Optional peer of bench/run.sh (which installs `ws` from npm).
//
// Usage: node node_echo.js --cert PEM --key PEM [--bind HOST:PORT] [--lifetime SECS]
// Prints "listening HOST:PORT" once it accepts; exits by itself after --lifetime seconds.
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const [host, port] = (args.bind || '127.0.0.1:9104').split(':');
const server = https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) });
// No compression, as for every other server in the benchmarks (it is ws' default too).
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
});
server.listen(Number(port), host, () => console.log(`listening ${host}:${port}`));
setTimeout(() => process.exit(0), Number(args.lifetime || 900) * 1000);
