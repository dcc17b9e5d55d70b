/**
 * Where a training run keeps its checkpoint (the files of src/rl/checkpoint.ts's format, by name): every
 * save replaces all files at once, so a load returns the last complete checkpoint. Implemented by
 * FsCheckpointStore (Node, a run folder: fs-checkpoint-store.ts), the lab's run store in IndexedDB
 * (src/lab/runs-store.ts) and the Chromium page's bridge to a run folder (scripts/chromium/).
 */
export interface CheckpointStore {
  /** The checkpoint's files by name, or null when none was saved. */
  load(): Promise<Map<string, Uint8Array> | null>;
  /** Replaces the checkpoint with `files`, all at once: an interrupted save leaves the previous checkpoint. */
  save(files: Map<string, Uint8Array>): Promise<void>;
}
