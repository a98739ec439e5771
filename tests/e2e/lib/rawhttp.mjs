// A tiny HTTP/1.1 client over a raw TCP socket, for tests that must see what fetch hides:
// when the first byte arrives, each SSE event as it lands, whether the chunked body ended
// with its terminator, and whether the connection ended with FIN or with RST.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { parseSseEvent } from './harness.mjs';

/**
 * Sends one request and records the exchange. Resolves (never rejects) with:
 * {status, headers, body (dechunked text), events [{event, data, raw, atMs}], partialEvent,
 *  firstByteMs, headersMs, chunkedDone (saw the 0-size chunk), bytes, end:'complete' (terminator or full length seen)|'end' (FIN)|'reset' (RST)|'error'|'timeout'|'stopped',
 *  errorCode, endMs}.
 * timeoutMs bounds the whole exchange (end = 'timeout'); stopWhen(result) is checked after
 * every event and stops the exchange early (end = 'stopped'). chunked: send the body with
 * Transfer-Encoding: chunked (three chunks) instead of Content-Length.
 */
export function rawRequest({
  port,
  host = '127.0.0.1',
  method = 'POST',
  path = '/v1/messages',
  headers = {},
  body = '',
  timeoutMs = 10000,
  stopWhen = null,
  chunked = false,
}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const r = {
      status: 0,
      headers: {},
      body: '',
      events: [],
      partialEvent: '',
      firstByteMs: null,
      headersMs: null,
      chunkedDone: false,
      bytes: 0,
      end: null,
      errorCode: null,
      endMs: null,
    };
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let headDone = false;
    let chunked = false;
    let contentLength = -1;
    let chunkLeft = -1; // -1: expecting a size line
    let sseText = '';
    const dec = new StringDecoder('utf8');
    let finished = false;
    const timer = setTimeout(() => finish('timeout'), timeoutMs);

    function finish(how, code = null) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      r.end = how;
      r.errorCode = code;
      r.endMs = performance.now() - t0;
      r.partialEvent = sseText;
      sock.destroy();
      resolve(r);
    }

    function onBodyText(text) {
      r.body += text;
      sseText += text;
      let i;
      while ((i = sseText.indexOf('\n\n')) >= 0) {
        const raw = sseText.slice(0, i);
        sseText = sseText.slice(i + 2);
        if (raw.length === 0) continue;
        r.events.push({ ...parseSseEvent(raw), atMs: performance.now() - t0 });
        if (stopWhen && stopWhen(r)) {
          finish('stopped');
          return;
        }
      }
    }

    function pump() {
      if (!headDone) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const lines = buf.subarray(0, i).toString('latin1').split('\r\n');
        buf = buf.subarray(i + 4);
        r.status = Number(lines[0].split(' ')[1]);
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          r.headers[k] = k in r.headers ? `${r.headers[k]}, ${v}` : v;
        }
        r.headersMs = performance.now() - t0;
        headDone = true;
        chunked = /chunked/i.test(r.headers['transfer-encoding'] || '');
        if ('content-length' in r.headers) contentLength = Number(r.headers['content-length']);
        if (method === 'HEAD') contentLength = 0;
      }
      if (!chunked) {
        if (buf.length) {
          onBodyText(dec.write(buf));
          buf = Buffer.alloc(0);
        }
        if (contentLength >= 0 && Buffer.byteLength(r.body) >= contentLength) finish('complete');
        return;
      }
      while (!finished && !r.chunkedDone) {
        if (chunkLeft < 0) {
          const i = buf.indexOf('\r\n');
          if (i < 0) return;
          chunkLeft = parseInt(buf.subarray(0, i).toString('latin1'), 16);
          buf = buf.subarray(i + 2);
          if (chunkLeft === 0) {
            r.chunkedDone = true;
            finish('complete');
            return;
          }
        }
        if (buf.length < chunkLeft + 2) {
          // Hand over what is there so events are timed as they arrive.
          if (buf.length > 0 && buf.length <= chunkLeft) {
            const take = buf.subarray(0, buf.length);
            chunkLeft -= take.length;
            buf = Buffer.alloc(0);
            onBodyText(dec.write(take));
          }
          return;
        }
        const data = buf.subarray(0, chunkLeft);
        buf = buf.subarray(chunkLeft + 2);
        chunkLeft = -1;
        onBodyText(dec.write(data));
      }
    }

    sock.on('connect', () => {
      const bodyBuf = Buffer.from(body);
      const h = { host: `${host}:${port}`, connection: 'close', ...headers };
      if (chunked) h['transfer-encoding'] = 'chunked';
      else if (method !== 'GET' && method !== 'HEAD') h['content-length'] = String(bodyBuf.length);
      let head = `${method} ${path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(h)) head += `${k}: ${v}\r\n`;
      sock.write(`${head}\r\n`);
      if (!chunked) {
        sock.write(bodyBuf);
        return;
      }
      // Three uneven chunks, as a proxy re-framing a body of unknown length would send.
      const cuts = [0, Math.floor(bodyBuf.length / 3), Math.floor(bodyBuf.length / 2), bodyBuf.length];
      for (let i = 0; i < 3; i++) {
        const part = bodyBuf.subarray(cuts[i], cuts[i + 1]);
        if (part.length) sock.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
      }
      sock.write('0\r\n\r\n');
    });
    sock.on('data', (d) => {
      if (r.firstByteMs === null) r.firstByteMs = performance.now() - t0;
      r.bytes += d.length;
      buf = Buffer.concat([buf, d]);
      pump();
    });
    sock.on('end', () => finish('end'));
    sock.on('error', (e) => finish(e.code === 'ECONNRESET' ? 'reset' : 'error', e.code || e.message));
    sock.on('close', () => finish('end'));
  });
}

/**
 * Sends a request head with `Expect: 100-continue` and holds the body back until the server
 * says `100 Continue` (or waitMs passes), as libcurl does for large bodies. Resolves
 * {continueMs (null if none came), status (final), body}.
 */
export function expectContinue({ port, host = '127.0.0.1', path = '/v1/messages', headers = {}, body, waitMs = 3000, timeoutMs = 10000 }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const bodyBuf = Buffer.from(body);
    const sock = net.connect({ host, port });
    let text = '';
    let continueMs = null;
    let sent = false;
    const sendBody = () => {
      if (!sent) {
        sent = true;
        sock.write(bodyBuf);
      }
    };
    const fallback = setTimeout(sendBody, waitMs);
    const timer = setTimeout(() => done(), timeoutMs);
    let finished = false;
    function done() {
      if (finished) return;
      finished = true;
      clearTimeout(fallback);
      clearTimeout(timer);
      sock.destroy();
      let rest = text;
      if (rest.startsWith('HTTP/1.1 100')) rest = rest.slice(rest.indexOf('\r\n\r\n') + 4);
      const status = Number(rest.split(' ')[1]) || 0;
      resolve({ continueMs, status, raw: text });
    }
    sock.on('connect', () => {
      const h = { host: `${host}:${port}`, connection: 'close', 'content-length': String(bodyBuf.length), expect: '100-continue', ...headers };
      let head = `POST ${path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(h)) head += `${k}: ${v}\r\n`;
      sock.write(`${head}\r\n`);
    });
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (continueMs === null && /^HTTP\/1\.1 100[^\r]*\r\n\r\n/.test(text)) {
        continueMs = performance.now() - t0;
        sendBody();
      }
    });
    sock.on('end', done);
    sock.on('close', done);
    sock.on('error', done);
  });
}
