/** Test support for the data layer (not used by the lab at run time). */
import { existsSync, readFileSync } from 'node:fs';

/** The authors' 5-row FVQA sample (mmsearch_r1/data/mini_data.pq, written by pyarrow), read in place. */
export const FIXTURE = '/work/shared/fixtures/fvqa/mini_data.pq';

/** The fixture's bytes; a missing file is a failure that says where it should be, never a skip. */
export function fixtureBytes(): Uint8Array {
  if (!existsSync(FIXTURE)) throw new Error(`FVQA fixture missing: expected ${FIXTURE} (5 real rows written by pyarrow)`);
  return new Uint8Array(readFileSync(FIXTURE));
}
