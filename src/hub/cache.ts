/**
 * The storage interface of the hub downloader, implemented in src/storage by IdbHubCache (browser,
 * IndexedDB: idb-hub-cache.ts) and FsHubCache (Node, files: fs-hub-cache.ts). An entry is one file of
 * one repo at one revision, tagged with the remote version (size and ETag) it holds bytes of. Bytes
 * arrive in order and are appended, so a download cut off anywhere resumes from `stored`. Only an entry
 * marked complete, whose stored size equals the version's size, is ever returned as the file.
 */

/** Identifies a cached file. */
export interface CacheKey {
  /** `ORG/NAME` */
  repo: string;
  revision: string;
  /** Path inside the repo. */
  file: string;
}

/** What the server says the file is: size in bytes and ETag (when it sends one). */
export interface RemoteVersion {
  size: number;
  etag: string | undefined;
}

/** An entry's state: the version it holds, bytes stored so far, and whether it is complete. */
export interface CacheState {
  version: RemoteVersion;
  stored: number;
  complete: boolean;
}

export interface HubCache {
  /** State of the entry, undefined when there is none. */
  state(key: CacheKey): Promise<CacheState | undefined>;
  /** Drops whatever the entry holds and starts it empty for `version`. */
  reset(key: CacheKey, version: RemoteVersion): Promise<void>;
  /** Appends bytes after those stored. @throws Error when the entry does not exist or is complete. */
  append(key: CacheKey, bytes: Uint8Array): Promise<void>;
  /**
   * Marks the entry complete and returns the file.
   * @throws Error (and drops the entry) when stored bytes differ from the version's size.
   */
  finish(key: CacheKey): Promise<Blob>;
  /** The complete file. @throws Error when the entry is missing or incomplete. */
  get(key: CacheKey): Promise<Blob>;
  delete(key: CacheKey): Promise<void>;
}

/** Same remote version: equal sizes, and equal ETags when both sides have one. */
export function sameVersion(a: RemoteVersion, b: RemoteVersion): boolean {
  return a.size === b.size && (a.etag === undefined || b.etag === undefined || a.etag === b.etag);
}

/** `repo@revision/file`, for messages and as a flat key. */
export function keyString(k: CacheKey): string {
  return `${k.repo}@${k.revision}/${k.file}`;
}
