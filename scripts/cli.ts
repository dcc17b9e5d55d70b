/**
 * Command-line parsing for the lab's scripts: node:util parseArgs plus `--help`, which prints the
 * script's header comment (its usage), and a one-line message instead of a stack trace for an unknown
 * option or a missing value.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The first block comment of a source file, without its comment markers. */
export function headerComment(source: string): string {
  const m = /\/\*\*([\s\S]*?)\*\//.exec(source);
  return m ? m[1].split('\n').map((l) => l.replace(/^\s*\* ?/, '')).join('\n').trim() : '';
}

/**
 * parseArgs(config) for the script at `scriptUrl` (its import.meta.url). `--help` prints the script's
 * header comment and exits 0; a parse error (unknown option, option without its value) prints
 * "<script>: <error>; --help lists the options" and exits 2.
 */
export function parseCli<T extends ParseArgsConfig>(config: T, scriptUrl: string): ReturnType<typeof parseArgs<T>> {
  const path = fileURLToPath(scriptUrl);
  const args = config.args ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(headerComment(readFileSync(resolve(path), 'utf8')));
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (e) {
    // Node's advice on positionals that start with '-' is noise for an option typed wrong.
    const message = (e instanceof Error ? e.message : String(e)).replace(/\. To specify a positional argument.*$/s, '');
    console.error(`${basename(path, '.ts')}: ${message}; --help lists the options`);
    process.exit(2);
  }
}

/**
 * The file of a recipe given on the command line: a path, or the name of one in recipes/ (`fvqa-mini` is
 * recipes/fvqa-mini.json). @throws Error naming both places looked at when neither exists.
 */
export function recipeFile(nameOrPath: string): string {
  if (existsSync(nameOrPath)) return nameOrPath;
  const named = join(resolve(fileURLToPath(new URL('..', import.meta.url))), 'recipes', `${nameOrPath}.json`);
  if (!existsSync(named)) throw new Error(`recipe ${nameOrPath} not found (looked at ${nameOrPath} and ${named})`);
  return named;
}
