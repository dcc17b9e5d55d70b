/**
 * Hugging Face hub references and resolve URLs.
 *
 * `hf:ORG/NAME@REVISION` (revision defaults to `main`) names a model repository at a branch, tag or
 * commit. A file of it is fetched from `{endpoint}/{ORG}/{NAME}/resolve/{REVISION}/{FILE}`, the hub's
 * file download scheme (huggingface_hub `hf_hub_url`: the revision is percent-encoded as one path
 * segment, so `refs/pr/1` becomes `refs%2Fpr%2F1`; each segment of the file path is encoded).
 * `hf:ORG/NAME[@REVISION]/FILE` names one file of a dataset repository (a recipe's data files, e.g.
 * `hf:lmms-lab/FVQA/fvqa_train.parquet`), fetched from `{endpoint}/datasets/{ORG}/{NAME}/resolve/...`.
 * The endpoint is configurable so an offline lab can point at a local mirror.
 */

/** The public hub. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** A parsed `hf:` reference. */
export interface HfRef {
  /** `ORG/NAME` */
  repo: string;
  /** Branch, tag or commit; `main` when the reference has none. */
  revision: string;
  /** huggingface_hub's `repo_type`: files of a dataset repository live under `datasets/`; absent means a model. */
  repoType?: 'model' | 'dataset';
}

// Hub repo names: letters, digits, '-', '_', '.', not starting or ending with '-' or '.', no '--' or '..'.
const PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

/**
 * Parses `hf:ORG/NAME` or `hf:ORG/NAME@REVISION`.
 * @throws Error naming the reference when the prefix, the ORG/NAME form or the revision is invalid.
 */
export function parseHfRef(ref: string): HfRef {
  if (!ref.startsWith('hf:')) throw new Error(`"${ref}" is not a hub reference: expected hf:ORG/NAME[@REVISION]`);
  const body = ref.slice(3);
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? 'main' : body.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) {
    throw new Error(`"${ref}": repository must be ORG/NAME (letters, digits, '-', '_', '.')`);
  }
  if (revision === '' || /[\s@]/.test(revision) || revision.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`"${ref}": invalid revision "${revision}"`);
  }
  return { repo, revision };
}

/** A file of a dataset repository. */
export interface HfFileRef {
  ref: HfRef;
  /** Path inside the repository. */
  file: string;
}

/**
 * Parses `hf:ORG/NAME[@REVISION]/FILE`, a file of a dataset repository. A revision holding '/' is
 * percent-encoded, as in resolve URLs (`hf:a/b@refs%2Fpr%2F1/train.parquet`).
 * @throws Error naming the reference when the repository, the revision or the file path is invalid.
 */
export function parseHfDatasetFile(ref: string): HfFileRef {
  const parts = ref.startsWith('hf:') ? ref.slice(3).split('/') : [];
  if (parts.length < 3) throw new Error(`"${ref}" is not a hub dataset file: expected hf:ORG/NAME[@REVISION]/FILE`);
  const [org, nameRev] = parts;
  const file = parts.slice(2).join('/');
  const at = nameRev.indexOf('@');
  let revision = '';
  if (at >= 0) {
    try {
      revision = '@' + decodeURIComponent(nameRev.slice(at + 1));
    } catch {
      throw new Error(`"${ref}": invalid percent-encoding in the revision`);
    }
  }
  let repo: HfRef;
  try {
    repo = parseHfRef(`hf:${org}/${at < 0 ? nameRev : nameRev.slice(0, at)}${revision}`);
  } catch (e) {
    throw new Error(`"${ref}": ${(e as Error).message}`);
  }
  if (file.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new Error(`"${ref}": invalid file path "${file}"`);
  return { ref: { ...repo, repoType: 'dataset' }, file };
}

/**
 * URL of `file` (a path inside the repo, e.g. `model.safetensors` or `onnx/model.onnx`) at `ref`.
 * @param endpoint base URL without trailing slash requirement, default https://huggingface.co
 * @throws Error for an empty, absolute or `..`-containing file path.
 */
export function resolveUrl(ref: HfRef | string, file: string, endpoint = DEFAULT_HUB_ENDPOINT): string {
  const r = typeof ref === 'string' ? parseHfRef(ref) : ref;
  const segs = file.split('/');
  if (file === '' || segs.some((s) => s === '' || s === '.' || s === '..')) throw new Error(`invalid file path "${file}" in ${r.repo}`);
  const base = endpoint.replace(/\/+$/, '');
  return `${base}/${r.repoType === 'dataset' ? 'datasets/' : ''}${r.repo}/resolve/${encodeURIComponent(r.revision)}/${segs.map(encodeURIComponent).join('/')}`;
}
