/**
 * The WebAssembly backend's thread pool: every share of a job runs exactly once on its own thread,
 * back-to-back jobs do not mix, a trap in a worker's share is raised on the calling thread (not a
 * hang), the heap's size classes reuse freed blocks, and its limit is reported by name.
 */
import { expect, test } from 'vitest';
import { Func, i32, ifThen, seq } from './asm.js';
import { Runtime, sizeClass } from './runtime.js';

/** counts[tid] += 1 at the address in the argument block; share 1 traps when the second argument is 1. */
function testFuncs(): Func[] {
  const f = new Func('count', ['i32', 'i32', 'i32']);
  const [args, tid] = [f.param(0), f.param(1)];
  const slot = i32.add(i32.load(args.get()), i32.shl(tid.get(), i32.const(2)));
  f.body = seq(
    // an out-of-bounds load traps (RuntimeError) in share 1 when asked to
    ifThen(i32.and(i32.eq(tid.get(), i32.const(1)), i32.load(args.get(), 4)), [...i32.load(i32.const(-16)), 0x1a]),
    i32.store(slot, i32.add(i32.load(slot), i32.const(1))),
  );
  return [f];
}

test('each share runs once per job on 3 threads, over 2,000 back-to-back jobs', async () => {
  const rt = await Runtime.create(testFuncs(), { threads: 3 });
  expect(rt.threads).toBe(3);
  const counts = rt.alloc(16, 'counts');
  rt.i32.fill(0, counts / 4, counts / 4 + 4);
  for (let j = 0; j < 2000; j++) {
    rt.setArgs(['i32', 'i32'], [counts, 0]);
    rt.run('count', 3);
  }
  expect(Array.from(rt.i32.slice(counts / 4, counts / 4 + 3))).toEqual([2000, 2000, 2000]);
  rt.close();
});

test('a late or spurious notify does not make a worker run the last job again', async () => {
  const rt = await Runtime.create(testFuncs(), { threads: 2 });
  const counts = rt.alloc(16, 'counts');
  rt.i32.fill(0, counts / 4, counts / 4 + 4);
  const ctl = new Int32Array(rt.memory.buffer, 0, 5);
  for (let j = 0; j < 50; j++) {
    rt.setArgs(['i32', 'i32'], [counts, 0]);
    rt.run('count', 2);
    // what a caller preempted between its generation bump and its notify delivers late
    Atomics.notify(ctl, 0);
    await new Promise((r) => setTimeout(r, 2));
  }
  expect(Array.from(rt.i32.slice(counts / 4, counts / 4 + 2))).toEqual([50, 50]);
  rt.close();
});

test('a trap in a worker share is raised by run() on the calling thread', async () => {
  const rt = await Runtime.create(testFuncs(), { threads: 2 });
  const counts = rt.alloc(16, 'counts');
  rt.setArgs(['i32', 'i32'], [counts, 1]);
  expect(() => rt.run('count', 2)).toThrow(WebAssembly.RuntimeError);
  // the pool keeps working afterwards
  rt.i32.fill(0, counts / 4, counts / 4 + 4);
  rt.setArgs(['i32', 'i32'], [counts, 0]);
  rt.run('count', 2);
  expect(Array.from(rt.i32.slice(counts / 4, counts / 4 + 2))).toEqual([1, 1]);
  rt.close();
});

test('size classes: 64-byte steps to 1 KiB, then quarter-power-of-two steps; freed blocks are reused', async () => {
  expect([1, 64, 65, 1024, 1025, 1280, 1281, 4096, 5000].map(sizeClass)).toEqual([64, 64, 128, 1024, 1280, 1280, 1536, 4096, 5120]);
  const rt = await Runtime.create(testFuncs(), { threads: 1 });
  const a = rt.alloc(5000, 'a');
  const top = rt.heapBytes;
  rt.release(a, 5000);
  expect(rt.alloc(4900, 'b')).toBe(a);
  expect(rt.heapBytes).toBe(top);
});

test('an allocation past the memory limit names the tensor, its size and the limit; the heap stays usable', async () => {
  const rt = await Runtime.create(testFuncs(), { threads: 1, maxPages: 1024 });
  expect(rt.maxBytes).toBe(64 * 2 ** 20);
  expect(() => rt.alloc(100 * 2 ** 20, 'lm_head.weight (26214400 × f32)')).toThrow(/out of memory allocating lm_head\.weight \(26214400 × f32\) \(104857600 bytes\).*over the 67108864-byte limit/);
  const p = rt.alloc(2 ** 20, 'after');
  expect(p).toBeGreaterThan(0);
});
