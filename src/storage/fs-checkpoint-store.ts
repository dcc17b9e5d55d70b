/**
 * A CheckpointStore on the filesystem (Node: the CLI and tests). A save writes every file into a
 * fresh folder and then swaps it with the previous checkpoint by renames, so an interrupted save
 * leaves the last complete checkpoint in place.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointStore } from './checkpoint-store.js';

export class FsCheckpointStore implements CheckpointStore {
  /** @param dir the run folder; the checkpoint lives in `dir/checkpoint`. */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private get current(): string {
    return join(this.dir, 'checkpoint');
  }

  async load(): Promise<Map<string, Uint8Array> | null> {
    // A crash between the two renames leaves only checkpoint.old: it is the last complete one.
    const dir = existsSync(this.current) ? this.current : existsSync(`${this.current}.old`) ? `${this.current}.old` : null;
    if (!dir) return null;
    return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  }

  async save(files: Map<string, Uint8Array>): Promise<void> {
    const next = `${this.current}.new`;
    rmSync(next, { recursive: true, force: true });
    mkdirSync(next);
    for (const [name, bytes] of files) writeFileSync(join(next, name), bytes);
    if (existsSync(this.current)) renameSync(this.current, `${this.current}.old`);
    renameSync(next, this.current);
    rmSync(`${this.current}.old`, { recursive: true, force: true });
  }
}
