/**
 * Image preprocessing for the vision tower (SigLIP / Idefics3 convention): RGBA bytes -> bilinear
 * resize to image_size x image_size -> rescale 1/255 -> normalise with mean 0.5, std 0.5 (so values
 * lie in [-1, 1]) -> channel-first [3, H, W] f32. Transformers' Idefics3ImageProcessor without image
 * splitting keeps the aspect ratio with padding; the lab's square images need neither.
 */

/**
 * @param rgba RGBA bytes, row-major, width·height·4
 * @returns Float32Array [3·size·size] in CHW order
 * @throws when the byte count does not match width·height·4
 */
export function pixelValues(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, size: number): Float32Array {
  if (rgba.length !== width * height * 4) throw new Error(`pixelValues: ${rgba.length} bytes for a ${width}x${height} RGBA image (expected ${width * height * 4})`);
  const out = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    // Pixel-centre alignment (align_corners=False), as PIL/torch bilinear resizing.
    const sy = Math.min(Math.max(((y + 0.5) * height) / size - 0.5, 0), height - 1);
    const y0 = Math.floor(sy), y1 = Math.min(y0 + 1, height - 1), fy = sy - y0;
    for (let x = 0; x < size; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * width) / size - 0.5, 0), width - 1);
      const x0 = Math.floor(sx), x1 = Math.min(x0 + 1, width - 1), fx = sx - x0;
      const i00 = (y0 * width + x0) * 4, i01 = (y0 * width + x1) * 4, i10 = (y1 * width + x0) * 4, i11 = (y1 * width + x1) * 4;
      for (let c = 0; c < 3; c++) {
        const v = (1 - fy) * ((1 - fx) * rgba[i00 + c] + fx * rgba[i01 + c]) + fy * ((1 - fx) * rgba[i10 + c] + fx * rgba[i11 + c]);
        out[(c * size + y) * size + x] = (v / 255 - 0.5) / 0.5;
      }
    }
  }
  return out;
}
