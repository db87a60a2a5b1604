// Runs wrk (Debian's, installed by bench/run.sh) with bench/count.lua for
// one scenario, and reads workerd's CPU time around it from /proc.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../devstack/stack.mjs';
import { cpuMs } from './targets.mjs';

const bodies = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-bench-bodies-'));
let bodyCounter = 0;

/**
 * @param {object} s scenario: { url, method, headers, body, expectStatus, expectLength, lengthSlack, reject }
 * @param {object} o { connections, seconds, threads, workerdPid }
 * @returns {Promise<object>} wrk's figures, plus workerd's and wrk's CPU time
 */
export async function runWrk(s, { connections, seconds, threads = 1, workerdPid }) {
  let bodyFile = '';
  if (s.body !== undefined) {
    bodyFile = path.join(bodies, `body-${bodyCounter++}`);
    writeFileSync(bodyFile, s.body);
  }
  const env = {
    ...process.env,
    BENCH_METHOD: s.method ?? 'GET',
    BENCH_BODY_FILE: bodyFile,
    BENCH_HEADERS: Object.entries(s.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join('\n'),
    BENCH_EXPECT_STATUS: String(s.expectStatus),
    BENCH_EXPECT_LENGTH: String(s.expectLength ?? -1),
    BENCH_LENGTH_SLACK: String(s.lengthSlack ?? 0),
    BENCH_REJECT: s.reject ?? '',
  };
  const args = ['-f', 'WRK_CPU %U %S', 'wrk', `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s',
    '-s', path.join(ROOT, 'bench/count.lua'), s.url];
  const cpuBefore = cpuMs(workerdPid);
  const child = spawn('/usr/bin/time', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => child.on('exit', r));
  const cpuAfter = cpuMs(workerdPid);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (code !== 0 || !line) throw new Error(`wrk failed (${code}): ${out}\n${err}`);
  const result = JSON.parse(line.slice('BENCH_RESULT '.length));
  const [user, sys] = (err.match(/WRK_CPU ([\d.]+) ([\d.]+)/) ?? []).slice(1).map(Number);
  const wall = result.duration_us / 1e6;
  return {
    ...result,
    rps: result.expected / wall,
    workerdCpuMs: cpuAfter - cpuBefore,
    cpuPerRequestMs: (cpuAfter - cpuBefore) / Math.max(1, result.requests),
    wrkCpuShare: (user + sys) / wall, // of one core
  };
}
