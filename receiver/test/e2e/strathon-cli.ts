// Running the real Strathon CLI (cli/ of the public strathon/strathon repository) in tests.
// CLI source: $STRATHON_CLI_DIR (the cli/ folder or the repository root), else exported from the
// bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo). Python:
// $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { after } from 'node:test';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MIRROR = process.env.STRATHON_MIRROR ?? '/work/.mirror/strathon+strathon/repo';
const PYTHON = process.env.STRATHON_CLI_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export interface CliOut { code: number; stdout: string; stderr: string }

/** Locate the CLI and check its Python packages: `{ dir }` to use, or `{ reason }` to skip. */
export async function locateStrathonCli(): Promise<{ dir: string } | { reason: string }> {
  let dir: string | undefined;
  const given = process.env.STRATHON_CLI_DIR;
  if (given) {
    dir = [given, path.join(given, 'cli')].find((d) => existsSync(path.join(d, 'strathon_cli', 'main.py')));
    if (!dir) return { reason: `STRATHON_CLI_DIR=${given} holds no strathon_cli/main.py` };
  } else {
    if (!existsSync(MIRROR)) return { reason: `Strathon mirror not found at ${MIRROR} (set STRATHON_CLI_DIR or STRATHON_MIRROR)` };
    const tmp = mkdtempSync(path.join(tmpdir(), 'strathon-cli-'));
    after(() => rmSync(tmp, { recursive: true, force: true }));
    try {
      await run('git', ['-C', MIRROR, 'archive', '--format=tar', '-o', path.join(tmp, 'cli.tar'), 'HEAD', 'cli']);
      await run('tar', ['-xf', path.join(tmp, 'cli.tar'), '-C', tmp]);
    } catch (err) {
      return { reason: `could not export cli/ from ${MIRROR}: ${(err as Error).message.split('\n')[0]}` };
    }
    dir = path.join(tmp, 'cli');
    if (!existsSync(path.join(dir, 'strathon_cli', 'main.py'))) return { reason: `${MIRROR} has no cli/strathon_cli/main.py at HEAD` };
  }
  try {
    await run(PYTHON, ['-c', 'import click, httpx, rich, yaml'], { timeout: 30_000 });
  } catch {
    return { reason: `${PYTHON} lacks click/httpx/rich/yaml (apt-get install python3-click python3-httpx python3-rich python3-yaml)` };
  }
  return { dir };
}

/** Run `strathon <args>` with STRATHON_ENDPOINT=url and STRATHON_API_KEY=credential. */
export async function runStrathon(cliDir: string, url: string, credential: string, args: string[]): Promise<CliOut> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', PYTHONPATH: cliDir, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1',
    STRATHON_ENDPOINT: url, STRATHON_API_KEY: credential, COLUMNS: '240', NO_COLOR: '1', TERM: 'dumb', NO_PROXY: '*',
  };
  try {
    const out = await run(PYTHON, ['-c', 'from strathon_cli.main import cli; cli()', ...args], { env, timeout: 60_000 });
    return { code: 0, stdout: out.stdout, stderr: out.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
