/**
 * A small corpus drawn in code for the search tests (Node and browser): four entities, each with
 * a page and a 32x32 PNG whose pixels are easy to reason about by hand.
 */
import { encode as encodePng } from 'fast-png';
import type { SearchCorpus } from './corpus.js';
import type { RgbaImage } from './image.js';

/** Draws a w x h RGBA image from a per-pixel colour function. */
export function draw(w: number, h: number, f: (x: number, y: number) => [number, number, number]): RgbaImage {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = f(x, y);
      data.set([r, g, b, 255], (y * w + x) * 4);
    }
  }
  return { width: w, height: h, data };
}

export function png(img: RgbaImage): Uint8Array {
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/** The four test images: halves, vertical green ramp, horizontal grey ramp, checkerboard. */
export const TEST_IMAGES = {
  e1: draw(32, 32, (x) => (x < 16 ? [255, 0, 0] : [0, 0, 255])),
  e2: draw(32, 32, (_x, y) => [0, 64 + y * 6, 0]),
  e3: draw(32, 32, (x) => [x * 8, x * 8, x * 8]),
  e4: draw(32, 32, (x, y) => ((Math.floor(x / 4) + Math.floor(y / 4)) % 2 ? [140, 0, 200] : [255, 255, 255])),
};

const PAGES = [
  ['e1', 'Crimson Lighthouse', 'The Crimson Lighthouse stands on the northern cape. It was painted red and blue in 1911. Its lamp is visible for forty kilometres. Sailors call it the Beacon of Orm. The keeper lives in a cottage beside it. Tourists visit it every summer. The lighthouse is 52 metres tall.'],
  ['e2', 'Verdant Tower', 'The Verdant Tower is covered in green ivy. It was built by the architect Selma Ravn in 1872. The tower houses a library of old maps. Its height is 31 metres. A garden surrounds the tower.'],
  ['e3', 'Amber Bridge', 'The Amber Bridge crosses the river Lune. It opened in 1930. The bridge is made of grey stone that turns amber at sunset. It is 400 metres long. Trams crossed it until 1961. Today only pedestrians may cross. A festival is held on the bridge each May.'],
  ['e4', 'Violet Dome', 'The Violet Dome is a concert hall with a chequered roof. Its roof alternates violet and white tiles. The hall seats 2,000 people. It was designed by Ivo Marsh. The dome opened in 1988.'],
] as const;

/** The test corpus: pages p1..p4 and images e1..e4 (image ei shows the entity of page pi). */
export function makeTestCorpus(): SearchCorpus {
  return {
    pages: PAGES.map(([id, title, text], i) => ({ id: `p${i + 1}`, title, url: `https://world.test/wiki/${id}`, text })),
    images: PAGES.map(([id, title], i) => ({
      id,
      title: `${title} photograph`,
      url: `https://world.test/img/${id}`,
      file: `images/${id}.png`,
      pageId: `p${i + 1}`,
      png: png(TEST_IMAGES[id]),
    })),
  };
}
